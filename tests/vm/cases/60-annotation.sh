# The annotation route: no KERNEL_MODULES in the environment, the request
# comes from the annotation modgate.io/kernel-modules.
for rt in crun runc; do
    reset_modules
    begin "$rt: annotation modgate.io/kernel-modules=ip_vs_rr loads ip_vs_rr"
    run_ctr "$rt" "ann-$rt" "" "modgate.io/kernel-modules=ip_vs_rr"
    want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
    want "container output seen" grep -qx "hello from ann-$rt" "$CTR_OUT"
    want_loaded ip_vs_rr ip_vs nf_conntrack
    end
done

reset_modules
begin "runc: no request at all loads nothing and the container runs"
before=$(mods)
run_ctr runc no-request ""
want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
want "container output seen" grep -qx "hello from no-request" "$CTR_OUT"
want_mods "$before"
end

reset_modules
begin "runc: annotation asking for dccp is refused"
before=$(mods)
run_ctr runc ann-deny "" "modgate.io/kernel-modules=dccp"
want "container refused (exit $CTR_RC)" [ "$CTR_RC" -ne 0 ]
want "runc shows the hook's 'modgate:' line naming dccp" grep -q 'modgate:.*dccp' "$CTR_ERR"
want_not_loaded dccp
want_mods "$before"
end
