# Crashes and damage. A hook killed with SIGKILL in the middle of a load (at a
# sweep of delays; the xz tree makes a load slow enough to land in): the next
# hook and gc cope, the dead hook's record is not lost, and every module its
# record shows it inserted (its "progress") is recorded as modgate's and removed
# by the next release or gc. A module it left live without that proof (killed
# while the kernel inserted it) is nobody's: modgate leaves it, the admin removes it.
# A damaged record or ledger entry: the hook that reads it logs it, moves it aside,
# goes on.
LC=/tmp/lc-crash
rm -rf /run/modgate $LC
mkdir -p $LC
modgate policy default | sed 's/^unload = "never"$/unload = "on-last-release"/' >$LC/olr.toml
OLR=$LC/olr.toml
# In-process xz decompression: each module takes a while to go in.
R=/roots/xz
{ echo "#pre"; mods; } >$LC/pre
pre=$(mods)

new_mods() { mods | grep -vxF -f $LC/pre | tr '\n' ' '; }
# The modules a record's "progress" (pretty JSON) lists.
progress_of() {
    tr -d ' \n' <"$1" | sed -n 's/.*"progress":\[\([^]]*\)\].*/\1/p' | tr '{' '\n' |
        sed -n 's/.*"module":"\([a-z0-9_]*\)".*/\1/p' | tr '\n' ' '
}
# A record's file name: the SHA-256 of the container id.
key() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

mid=0
n=0
for d in 30 60 100 150 200 300 400 500 700 900 1200 1600 2000; do
    [ $mid -ge 3 ] && break
    n=$((n + 1))
    # Each try from the same start, whatever the last one left.
    reset_modules
    rm -rf /run/modgate
    b=$(new_bundle k$n ip_vs,ip_vs_wrr)
    hook_state $b k$n >$b/state.json
    modgate --root $R hook prestart --log $b/hook.log <$b/state.json >$b/out 2>$b/err &
    pid=$!
    usleep $((d * 1000))
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    rec=/run/modgate/containers/$(key k$n).json
    left=$(new_mods)
    proven=
    unproven=
    if [ -f $rec ] && grep -q '"stage": "loading"' $rec; then
        proven=$(progress_of $rec)
        for m in $left; do
            case " $proven " in *" $m "*) ;; *) unproven="$unproven $m" ;; esac
        done
        what="mid-load, live: ${left:-none}; unrecorded:${unproven:- none}"
        [ -n "$left" ] && mid=$((mid + 1))
    elif [ -f $rec ]; then
        what="after the load"
    else
        what="before the record was written"
    fi
    echo "  hook killed after $d ms: $what"

    begin "SIGKILL after $d ms ($what): the next hook runs, what it recorded is modgate's, then removed"
    b2=$(new_bundle n$n ip_vs,ip_vs_wrr)
    hook_by_hand $b2 n$n --root $R hook prestart --policy $OLR --log $b2/hook.log
    show $b2/hook.log hook.log
    want "the next hook exits 0 (got $HOOK_RC)" [ "$HOOK_RC" -eq 0 ]
    want "the next hook is quiet on stderr" not test -s $HOOK_ERR
    case $what in mid-load*)
        want "the next hook logs the dead load" grep -q "container k$n: its hook died while loading" $b2/hook.log
        want "the dead hook's record is handled (gone)" not test -f $rec
        ;;
    esac
    for m in $proven; do
        want "$m, recorded as inserted by the dead hook, is modgate's (got $(owner_of $m))" [ "$(owner_of $m)" = modgate ]
    done
    for m in $unproven; do
        want "$m, live without a record of its insertion, is not modgate's" [ "$(owner_of $m)" != modgate ]
    done
    want_loaded ip_vs ip_vs_wrr
    hook_by_hand $b2 n$n --root $R hook poststop --policy $OLR --log $b2/hook.log
    want "poststop exits 0 (got $HOOK_RC)" [ "$HOOK_RC" -eq 0 ]
    # A dead hook that finished its load leaves a holding record: gc's business.
    modgate gc --grace 0 --alive-ids /dev/null --policy $OLR >$LC/gc.out 2>&1
    want "gc exits 0" [ $? -eq 0 ]
    show $LC/gc.out gc
    want "no record left" [ -z "$(ls /run/modgate/containers)" ]
    if [ -n "$unproven" ]; then
        for m in $unproven; do
            want "$m, not modgate's, stays loaded" loaded $m
        done
        # The admin removes it; then gc removes what it kept in use.
        for i in 1 2 3; do for m in $unproven; do rmmod $m 2>/dev/null; done; done
        modgate gc --grace 0 --alive-ids /dev/null --policy $OLR >$LC/gc.out 2>&1
        show $LC/gc.out gc
    fi
    want_mods "$pre"
    end
done

begin "a SIGKILL landed mid-load at least once (in $n tries)"
want "mid-load kills: $mid" [ "$mid" -ge 1 ]
end

begin "a damaged record: the container's hook logs it, moves it aside and continues"
reset_modules
rm -rf /run/modgate
mkdir -p /run/modgate/containers
junk=$(key lc-damaged).json
printf '{"id": "lc-damaged", "stage": ' >/run/modgate/containers/$junk
HOOK_STAGES="prestart poststop" \
    HOOK_ARGS='"modgate","hook","@STAGE@","--policy","'$OLR'","--log","@BUNDLE@/hook.log"' \
    run_ctr crun lc-damaged dummy
want "the container runs (exit $CTR_RC)" [ "$CTR_RC" -eq 0 ]
want "the hook log names the damaged file" grep -q "$junk is damaged" "$CTR_LOG"
want "it is in corrupt/" test -n "$(ls /run/modgate/corrupt | grep "^$junk\.")"
want "the container's own release still unloads dummy" not loaded dummy
want_mods "$pre"
end

begin "a damaged ledger entry: modgate does not own the module, so removes nothing"
rm -rf /run/modgate
b=$(new_bundle lc-ledger dummy)
hook_by_hand $b lc-ledger hook prestart --policy $OLR --log $b/hook.log
want "prestart exits 0" [ "$HOOK_RC" -eq 0 ]
want_loaded dummy
echo '[' >/run/modgate/modules/dummy/owned.json
hook_by_hand $b lc-ledger hook poststop --policy $OLR --log $b/hook.log
show $b/hook.log hook.log
want "poststop exits 0" [ "$HOOK_RC" -eq 0 ]
want "the hook log names the damaged ledger entry" grep -q 'dummy/owned.json is damaged' $b/hook.log
want "dummy stays: without the ledger it is nobody's to remove" loaded dummy
modgate unload dummy >$LC/unload.out 2>&1
want "unload refuses it now" [ $? -ne 0 ]
end
rmmod dummy 2>/dev/null
rm -rf /run/modgate
