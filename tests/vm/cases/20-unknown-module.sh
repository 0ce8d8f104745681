# A module that does not exist: the container does not start, the refusal
# names the module, nothing is loaded.
for rt in crun runc; do
    reset_modules
    before=$(mods)
    begin "$rt: KERNEL_MODULES=nosuchmod refused"
    run_ctr "$rt" "unknown-$rt" nosuchmod
    want_mods "$before"
    want_refused "$rt" nosuchmod
    end
done

begin "hook by hand: exit non-zero, one 'modgate:' stderr line naming nosuchmod"
before=$(mods)
b=$(new_bundle unknown-hand nosuchmod)
hook_by_hand "$b" unknown-hand
want "exit non-zero" [ "$HOOK_RC" -ne 0 ]
want "exactly one stderr line, starting 'modgate:' and naming nosuchmod" one_modgate_line "$HOOK_ERR" nosuchmod
want_mods "$before"
end

begin "modgate load nosuchmod fails and loads nothing"
before=$(mods)
modgate load nosuchmod >/tmp/load.out 2>/tmp/load.err
rc=$?
show /tmp/load.err stderr
want "exit non-zero (got $rc)" [ "$rc" -ne 0 ]
want "stderr names nosuchmod" grep -q nosuchmod /tmp/load.err
want_mods "$before"
end
