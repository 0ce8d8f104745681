# 32 containers started and stopped at once, with overlapping requests and
# unload = "on-last-release": each sees its modules for its whole life, and at
# the end no record is left, nobody holds anything and exactly the modules
# that were there before (nf_conntrack, loaded by hand) remain.
N=32
LC=/tmp/lc-conc
rm -rf /run/modgate $LC /run/conc
mkdir -p $LC
modgate policy default | sed 's/^unload = "never"$/unload = "on-last-release"/' >$LC/olr.toml


# The hooks get --timeout 50 (their load budget 45 s): 32 containers on one
# emulated CPU queue behind each other for longer than the default gives; this
# case is about who holds what, not speed (88-deadline is about the budget).
# One runc for every four containers: runc's Go runtime costs memory in a
# small VM.
runtime() { if [ $(($1 % 4)) -eq 0 ]; then echo runc; else echo crun; fi; }

modprobe nf_conntrack
pre=$(mods)

for i in $(seq 1 $N); do
    b=/run/conc/c$i
    mkdir -p $b
    list=$(mix_request $i | tr , ' ')
    # The container checks, after a while, that what it asked for is still loaded.
    HOOK_STAGES="prestart poststop" \
        HOOK_ARGS='"modgate","hook","@STAGE@","--timeout","50","--policy","'$LC/olr.toml'","--log","@BUNDLE@/hook.log"' \
        CTR_ARGS="\"sh\", \"-c\", \"sleep 1; for m in $list; do grep -q '^'\$m' ' /proc/modules || echo MISSING \$m; done; echo done c$i\"" \
        write_config $b c$i "$(mix_request $i)" >$b/config.json
done
start=$(date +%s)
for i in $(seq 1 $N); do
    (
        b=/run/conc/c$i
        timeout 120 $(runtime $i) run --bundle $b c$i </dev/null >$b/out 2>$b/err
        echo $? >$b/rc
        $(runtime $i) delete -f c$i >/dev/null 2>&1
    ) &
done
wait
echo "  $N containers ran in $(($(date +%s) - start)) s"

bad=
missing=
nopost=
for i in $(seq 1 $N); do
    b=/run/conc/c$i
    rc=$(cat $b/rc 2>/dev/null || echo none)
    if [ "$rc" != 0 ] || ! grep -qx "done c$i" $b/out; then
        bad="$bad c$i($(runtime $i) $(mix_request $i): exit $rc)"
        show $b/err "c$i stderr"
        show $b/hook.log "c$i hook.log"
    fi
    grep -q MISSING $b/out && missing="$missing c$i($(grep MISSING $b/out | tr '\n' ' '))"
    grep -q "stage=poststop.*decision=released" $b/hook.log 2>/dev/null || nopost="$nopost c$i"
done
modgate status >$LC/status 2>&1
show $LC/status status

begin "$N concurrent containers: each ran with its modules loaded throughout"
want "every container exits 0 and prints done:$bad" [ -z "$bad" ]
want "no container saw a module it asked for missing:$missing" [ -z "$missing" ]
want "every poststop ran:$nopost" [ -z "$nopost" ]
end

begin "$N concurrent containers: no record, no holder, exactly the pre-existing modules"
want "no record left: $(ls /run/modgate/containers | tr '\n' ' ')" [ -z "$(ls /run/modgate/containers)" ]
# Nothing held and nothing of modgate's left: both lists are empty.
want "status lists no module and no container" status_empty
want_loaded nf_conntrack
want_mods "$pre"
end
rm -rf /run/modgate /run/conc
