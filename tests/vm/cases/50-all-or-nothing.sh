# A request is loaded whole or not at all.
for rt in runc crun; do
    reset_modules
    before=$(mods)
    begin "$rt: KERNEL_MODULES=ip_vs,nosuchmod refused, ip_vs not left loaded"
    run_ctr "$rt" "aon-$rt" ip_vs,nosuchmod
    want_not_loaded ip_vs nf_conntrack
    want_mods "$before"
    want_refused "$rt" nosuchmod
    end
done

# A load that fails half way: in a copy of the module tree, ip_vs_rr.ko claims
# another machine (ELF e_machine), so the kernel rejects it only after its
# dependencies (ip_vs, nf_conntrack, ...) went in. They must be unloaded again.
reset_modules
broken=/tmp/broken
mkdir -p $broken/lib $broken/proc $broken/sys $broken/run
cp -a /lib/modules $broken/lib/
for d in proc sys run; do mount --bind /$d $broken/$d; done
ko=$broken/lib/modules/$KV/kernel/net/netfilter/ipvs/ip_vs_rr.ko
printf '\267' | dd of=$ko bs=1 seek=18 count=1 conv=notrunc 2>/dev/null

begin "the scenario is real: kmod fails on ip_vs_rr after loading its dependencies"
before=$(mods)
modprobe -d $broken ip_vs_rr 2>/tmp/kmod.err
rc=$?
show /tmp/kmod.err kmod
want "modprobe ip_vs_rr fails (got $rc)" [ "$rc" -ne 0 ]
want_loaded ip_vs nf_conntrack
want_not_loaded ip_vs_rr
end
reset_modules

begin "modgate rolls back the dependencies of a module the kernel rejects"
before=$(mods)
dmesg -c >/dev/null
modgate --root $broken load ip_vs_rr >/tmp/load.out 2>/tmp/load.err
rc=$?
show /tmp/load.out stdout
show /tmp/load.err stderr
want "exit non-zero (got $rc)" [ "$rc" -ne 0 ]
want "stderr names ip_vs_rr" grep -q ip_vs_rr /tmp/load.err
want_not_loaded ip_vs_rr ip_vs nf_conntrack
want_mods "$before"
# ip_vs logs "ipvs loaded." when it initialises and "ipvs unloaded." when it goes.
if dmesg | grep -q 'IPVS: ipvs loaded'; then
    echo "  note: ip_vs went in and was unloaded again: the rollback path ran"
else
    echo "  note: nothing went in: modgate refused before loading"
fi
end

begin "hook with --root: same rollback, container refused"
before=$(mods)
HOOK_ARGS='"modgate","--root","'$broken'","hook","@STAGE@","--log","@BUNDLE@/hook.log"' \
    run_ctr runc aon-broken ip_vs_rr
want "container refused (exit $CTR_RC)" [ "$CTR_RC" -ne 0 ]
want "runc shows the hook's 'modgate:' line naming ip_vs_rr" grep -q 'modgate:.*ip_vs_rr' "$CTR_ERR"
want_not_loaded ip_vs_rr ip_vs nf_conntrack
want_mods "$before"
end

for d in proc sys run; do umount $broken/$d; done
rm -rf $broken
