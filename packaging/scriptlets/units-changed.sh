# Only a running systemd has units to reload (not a chroot, not an image build).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
