# The default policy (no policy file) denies dccp.
for rt in runc crun; do
    reset_modules
    before=$(mods)
    begin "$rt: KERNEL_MODULES=dccp refused by the default policy"
    run_ctr "$rt" "dccp-$rt" dccp
    want_not_loaded dccp
    want_mods "$before"
    want_refused "$rt" dccp
    end
done

begin "hook by hand: dccp gives one 'modgate:' stderr line naming dccp"
before=$(mods)
b=$(new_bundle dccp-hand dccp)
hook_by_hand "$b" dccp-hand
want "exit non-zero" [ "$HOOK_RC" -ne 0 ]
want "exactly one stderr line, starting 'modgate:' and naming dccp" one_modgate_line "$HOOK_ERR" dccp
want_mods "$before"
end

begin "policy check: dccp denied, ip_vs allowed, nothing loaded"
before=$(mods)
modgate policy check dccp >/tmp/pc.out 2>&1
rc_dccp=$?
show /tmp/pc.out dccp
modgate policy check ip_vs >/tmp/pc.out 2>&1
rc_ipvs=$?
show /tmp/pc.out ip_vs
want "policy check dccp exits non-zero (got $rc_dccp)" [ "$rc_dccp" -ne 0 ]
want "policy check ip_vs exits 0 (got $rc_ipvs)" [ "$rc_ipvs" -eq 0 ]
want_mods "$before"
end

begin "modgate load dccp refused under the default policy"
before=$(mods)
modgate load dccp >/tmp/load.out 2>/tmp/load.err
rc=$?
show /tmp/load.err stderr
want "exit non-zero (got $rc)" [ "$rc" -ne 0 ]
want_not_loaded dccp
want_mods "$before"
end
