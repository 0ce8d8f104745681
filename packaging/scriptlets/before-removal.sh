# The package is going away for good (not an upgrade). Undo what would break
# containers once /usr/bin/modgate is gone; everything else `modgate install` wrote is
# the admin's configuration and stays (see README, Packages).
# podman and CRI-O run every hooks.d hook, and a missing binary fails the container:
# remove the files `modgate install hooks-d` wrote for this binary.
for f in /usr/share/containers/oci/hooks.d/modgate-prestart.json \
    /usr/share/containers/oci/hooks.d/modgate-poststop.json \
    /etc/containers/oci/hooks.d/modgate-prestart.json \
    /etc/containers/oci/hooks.d/modgate-poststop.json; do
    if [ -f "$f" ] && grep -q '"/usr/bin/modgate"' "$f"; then
        rm -f "$f"
    fi
done
# The directories it made for them, when nothing else is left there.
rmdir /usr/share/containers/oci/hooks.d /usr/share/containers/oci 2>/dev/null || true
# syscontainer-tools' hook slot linked to modgate: put the original hook back.
if [ "$(readlink /var/lib/isulad/hooks/syscontainer-hooks 2>/dev/null)" = /usr/bin/modgate ] &&
    [ -e /var/lib/isulad/hooks/syscontainer-hooks.bak ]; then
    /usr/bin/modgate install syscontainer-tools --revert --binary /usr/bin/modgate >/dev/null || true
fi
if [ -d /run/systemd/system ]; then
    systemctl stop modgate-gc.timer modgate-gc.service >/dev/null 2>&1 || true
fi
# An admin may have enabled the timer: drop its link (works without a running systemd).
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable modgate-gc.timer >/dev/null 2>&1 || true
fi
