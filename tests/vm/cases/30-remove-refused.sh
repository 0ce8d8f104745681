# A container may not unload host modules: KERNEL_MODULES=-r,ip_vs is refused
# and ip_vs stays loaded.
modprobe ip_vs
for rt in runc crun; do
    before=$(mods)
    begin "$rt: KERNEL_MODULES=-r,ip_vs refused, ip_vs stays loaded"
    want "ip_vs loaded beforehand" loaded ip_vs
    run_ctr "$rt" "remove-$rt" "-r,ip_vs"
    want_loaded ip_vs
    want_mods "$before"
    want_refused "$rt"
    end
done

begin "hook by hand: -r,ip_vs gives one 'modgate:' stderr line"
before=$(mods)
b=$(new_bundle remove-hand "-r,ip_vs")
hook_by_hand "$b" remove-hand
want "exit non-zero" [ "$HOOK_RC" -ne 0 ]
want "exactly one stderr line starting 'modgate:'" one_modgate_line "$HOOK_ERR" ""
want_mods "$before"
end
