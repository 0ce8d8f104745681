# The hook's deadline. (1) A load that runs past its budget (--load-budget-ms, at a
# sweep of budgets; the xz tree makes each insertion slow) stops, removes what it
# inserted and fails: the loaded modules are exactly those of before. (2) A hook
# killed mid-load, then a module it meant to insert loaded by hand: nothing adopts
# it, so nothing of modgate's ever removes it.
DL=/tmp/deadline
rm -rf /run/modgate $DL
mkdir -p $DL
modgate policy default | sed 's/^unload = "never"$/unload = "on-last-release"/' >$DL/olr.toml
OLR=$DL/olr.toml
R=/roots/xz
pre=$(mods)
key() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
# A list field of a record (pretty JSON), one name a line.
rec_list() { # FILE FIELD
    tr -d ' \n' <"$1" | sed -n "s/.*\"$2\":\[\([^]]*\)\].*/\1/p" | tr ',' '\n' |
        sed -n 's/.*"\([a-z0-9_]*\)".*/\1/p'
}
records() { ls /run/modgate/containers 2>/dev/null | grep '\.json$'; }

mid=0
n=0
for budget in 1 60 120 200 300 450 700 1000 1500; do
    [ $mid -ge 2 ] && break
    n=$((n + 1))
    reset_modules
    rm -rf /run/modgate
    before=$(mods)
    b=$(new_bundle dl$n ip_vs,ip_vs_wrr)
    hook_by_hand $b dl$n --root $R hook prestart --load-budget-ms $budget --log $b/hook.log
    rolled=$(sed -n 's/.*rolled back \[\([^]]*\)\].*/\1/p' $HOOK_ERR)
    [ -n "$rolled" ] && mid=$((mid + 1))
    [ "$HOOK_RC" -eq 0 ] && echo "  budget $budget ms: the whole load fitted"
    begin "budget $budget ms: the hook fails or loads whole; lsmod after = lsmod before (rolled back: ${rolled:-nothing})"
    if [ "$HOOK_RC" -ne 0 ]; then
        want "one line on stderr" [ "$(wc -l <$HOOK_ERR)" -eq 1 ]
        want "it says the budget ran out" grep -q "ran past its budget of" $HOOK_ERR
        want "the log has it too" grep -q "ran past its budget of" $b/hook.log
        want "no record left" [ -z "$(records)" ]
        want_mods "$before"
    else
        want_loaded ip_vs ip_vs_wrr
    fi
    end
done

begin "a budget ran out mid-load, after insertions, at least once (in $n tries)"
want "mid-load stops: $mid" [ "$mid" -ge 1 ]
end

begin "runc: a container whose load runs past its budget is refused, nothing left loaded"
reset_modules
before=$(mods)
HOOK_ARGS='"modgate","--root","'$R'","hook","@STAGE@","--load-budget-ms","150","--log","@BUNDLE@/hook.log"' \
    run_ctr runc dl-runc ip_vs,ip_vs_wrr
want_refused runc "budget"
want_mods "$before"
end

# (2) Killed mid-load; a module still pending is then loaded by someone else.
found=0
n=0
for d in 150 300 500 700 900 1200 1600 2000 2500; do
    [ $found -ge 1 ] && break
    n=$((n + 1))
    reset_modules
    rm -rf /run/modgate
    b=$(new_bundle dk$n ip_vs,ip_vs_wrr)
    hook_state $b dk$n >$b/state.json
    (cd $b && exec modgate --root $R hook prestart --log $b/hook.log <$b/state.json >$b/out 2>$b/err) &
    pid=$!
    usleep $((d * 1000))
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rec=/run/modgate/containers/$(key dk$n).json
    [ -f $rec ] && grep -q '"stage": "loading"' $rec || continue
    cp $rec $DL/dead.json
    # The last module it meant to insert that is not live: someone else's to load.
    victim=
    for m in $(rec_list $DL/dead.json pending); do loaded $m || victim=$m; done
    [ -n "$victim" ] || continue
    found=1
    proven=$(rec_list $DL/dead.json progress | tr '\n' ' ')
    echo "  hook killed after $d ms: inserted (recorded) ${proven:-none}; $victim loaded by hand"
    modprobe $victim

    begin "killed after $d ms, then modprobe $victim: status does not adopt it"
    want "$victim is loaded" loaded $victim
    owner=$(owner_of $victim)
    want "$victim is not modgate's (got ${owner:-unlisted})" [ "$owner" != modgate ]
    want "$victim is held by nobody (got $(holders_of $victim))" [ "$(holders_of $victim)" = - ]
    for m in $proven; do
        loaded $m || continue
        want "$m, recorded as inserted by the dead hook, is modgate's" [ "$(owner_of $m)" = modgate ]
    done
    want "the dead hook's record is gone" not test -f $rec
    end

    begin "gc and unload leave $victim loaded"
    modgate gc --grace 0 --alive-ids /dev/null --policy $OLR >$DL/gc.out 2>&1
    want "gc exits 0" [ $? -eq 0 ]
    show $DL/gc.out gc
    want "$victim still loaded after gc" loaded $victim
    modgate unload $victim >$DL/unload.out 2>&1
    want "unload refuses $victim" [ $? -ne 0 ]
    show $DL/unload.out unload
    want "$victim still loaded after unload" loaded $victim
    end

    begin "the next container's hook neither adopts nor removes $victim"
    b2=$(new_bundle dn$n ip_vs,ip_vs_wrr)
    hook_by_hand $b2 dn$n --root $R hook prestart --policy $OLR --log $b2/hook.log
    want "prestart exits 0 (got $HOOK_RC)" [ "$HOOK_RC" -eq 0 ]
    want "$victim is not modgate's" [ "$(owner_of $victim)" != modgate ]
    hook_by_hand $b2 dn$n --root $R hook poststop --policy $OLR --log $b2/hook.log
    want "poststop exits 0 (got $HOOK_RC)" [ "$HOOK_RC" -eq 0 ]
    modgate gc --grace 0 --alive-ids /dev/null --policy $OLR >$DL/gc.out 2>&1
    want "$victim still loaded after the release and gc" loaded $victim
    want "no record left" [ -z "$(records)" ]
    end
done

begin "a kill left a pending module to load by hand at least once (in $n tries)"
want "found: $found" [ "$found" -ge 1 ]
end

reset_modules
rm -rf /run/modgate $DL
begin "modules as before the case"
want_mods "$pre"
end
