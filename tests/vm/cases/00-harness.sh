# The VM itself, without modgate: kmod loads and unloads real modules, the
# kernel's request_module() reaches /sbin/modprobe, both runtimes run a
# container, and the compressed module roots are complete.

begin "kmod loads ip_vs and its dependencies"
before=$(mods)
modprobe ip_vs
want "modprobe ip_vs exits 0" [ $? -eq 0 ]
want_loaded ip_vs nf_conntrack nf_defrag_ipv4 nf_defrag_ipv6 libcrc32c
# libcrc32c asks the kernel for "crc32c", which runs /sbin/modprobe.
want "request_module(crc32c) served (crc32c in /proc/crypto)" grep -q 'crc32c' /proc/crypto
end

begin "rmmod returns to the boot module set"
reset_modules
want_mods "$before"
want_not_loaded ip_vs nf_conntrack
end

for rt in crun runc; do
    begin "$rt runs a busybox container"
    HOOK_STAGES=none run_ctr "$rt" "plain-$rt" ""
    want "exit 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
    want "container output seen" grep -qx "hello from plain-$rt" "$CTR_OUT"
    end
done

for z in xz zstd; do
    ext=$z
    [ $z = zstd ] && ext=zst
    begin "/roots/$z holds $z modules with live /proc and /sys"
    deps=$(modprobe -d /roots/$z -S "$KV" --show-depends ip_vs_wrr 2>&1)
    echo "$deps"
    want "kmod resolves ip_vs_wrr in /roots/$z" \
        test -n "$(echo "$deps" | grep "/roots/$z/lib/modules/$KV/kernel/net/netfilter/ipvs/ip_vs_wrr.ko.$ext")"
    want "no uncompressed module in /roots/$z" test -z "$(find /roots/$z/lib/modules -name '*.ko')"
    want "/roots/$z/proc is the live /proc" test -r /roots/$z/proc/modules
    want "/roots/$z/sys is the live /sys" test -d /roots/$z/sys/module
    end
done

begin "syscontainer-hooks path points at modgate"
want "/var/lib/isulad/hooks/syscontainer-hooks -> /usr/bin/modgate" \
    test "$(readlink /var/lib/isulad/hooks/syscontainer-hooks)" = /usr/bin/modgate
want "modgate is executable" test -x /usr/bin/modgate
end
