# syscontainer-tools compatibility: the hook installed as
# /var/lib/isulad/hooks/syscontainer-hooks (a link to modgate), called with
# --state STAGE instead of `hook STAGE`.
HOOK_PATH=/var/lib/isulad/hooks/syscontainer-hooks
HOOK_ARGS='"syscontainer-hooks","--state","@STAGE@"'

for rt in runc crun; do
    reset_modules
    begin "$rt: syscontainer-hooks --state prestart loads ip_vs"
    run_ctr "$rt" "sch-$rt" ip_vs
    want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
    want "container output seen" grep -qx "hello from sch-$rt" "$CTR_OUT"
    want_loaded ip_vs nf_conntrack
    end
done

reset_modules
begin "runc: syscontainer-hooks at prestart, poststart and poststop"
HOOK_STAGES="prestart poststart poststop" run_ctr runc sch-stages ip_vs_rr
want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
want "container output seen" grep -qx "hello from sch-stages" "$CTR_OUT"
want "no runtime stderr" not test -s "$CTR_ERR"
want_loaded ip_vs_rr ip_vs
end

reset_modules
begin "runc: syscontainer-hooks --log FILE refuses dccp"
before=$(mods)
HOOK_ARGS='"syscontainer-hooks","--log","@BUNDLE@/hook.log","--state","@STAGE@"' \
    run_ctr runc sch-deny dccp
want "container refused (exit $CTR_RC)" [ "$CTR_RC" -ne 0 ]
want "runc shows the hook's 'modgate:' line naming dccp" grep -q 'modgate:.*dccp' "$CTR_ERR"
want_not_loaded dccp
want_mods "$before"
end
