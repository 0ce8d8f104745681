# Runs inside the test VM (bench/poststop): how long `modgate hook poststop` takes
# for a container that held ip_vs,ip_vs_wrr (8 modules with their dependencies, all
# inserted by modgate), with unload = "never" and with "on-last-release", and for a
# container that asked for nothing. Prints the median wall time (10 ms steps: busybox's
# date has no %N) and the median time the hook measures itself (`micros` in its log).
N=${BENCH_RUNS:-15}
now_ms() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + 10 * $(echo "${up#*.}" | sed 's/^0//') )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
W=/tmp/bench-poststop
rm -rf $W /run/modgate
mkdir -p $W
$MODGATE policy default >$W/never
sed 's/^unload = "never"$/unload = "on-last-release"/' $W/never >$W/on-last-release
b=$(new_bundle bench ip_vs,ip_vs_wrr)
hook_state $b bench >$W/state
n0=$(mods | wc -l)

# run MODE: one prestart (untimed) and one poststop (timed) from a clean state.
run() {
    reset_modules
    : >$W/log
    $MODGATE hook prestart --policy $W/$1 --log $W/log <$W/state >/dev/null 2>&1 ||
        { fail "$1: prestart" "exit $?"; return 1; }
    loaded=$(($(mods | wc -l) - n0))
    t0=$(now_ms)
    $MODGATE hook poststop --policy $W/$1 --log $W/log <$W/state >/dev/null 2>&1
    t1=$(now_ms)
    left=$(($(mods | wc -l) - n0))
    echo $((t1 - t0)) >>$W/wall.$1
    sed -n 's/.*stage=poststop.* micros=\([0-9]*\).*/\1/p' $W/log >>$W/micros.$1
    echo "$loaded $left" >>$W/counts.$1
}

i=0
while [ $i -lt "$N" ]; do
    run never || break
    run on-last-release || break
    i=$((i + 1))
done
# A container that asked for nothing: no record, the fast path.
i=0
while [ $i -lt "$N" ]; do
    t0=$(now_ms)
    hook_state /nonexistent idle | $MODGATE hook poststop >/dev/null 2>&1
    t1=$(now_ms)
    echo $((t1 - t0)) >>$W/wall.idle
    i=$((i + 1))
done
reset_modules
rm -rf /run/modgate

ms() { awk -v u="$1" 'BEGIN {printf "%.1f", u / 1000}'; }
echo "@@MODGATE INFO modgate hook poststop, median of $N (in the VM, TCG; wall time in 10 ms steps):"
for m in never on-last-release; do
    echo "@@MODGATE INFO   unload = \"$m\": wall $(median <$W/wall.$m) ms, in the hook $(ms "$(median <$W/micros.$m)") ms (modules held: $(cut -d' ' -f1 $W/counts.$m | sort -u | tr '\n' ' ')left after: $(cut -d' ' -f2 $W/counts.$m | sort -u | tr '\n' ' '))"
done
echo "@@MODGATE INFO   a container that asked for nothing: wall $(median <$W/wall.idle) ms"

# The figures mean something only if each mode did what it says.
never_left=$(cut -d' ' -f2 $W/counts.never | sort -u)
olr_left=$(cut -d' ' -f2 $W/counts.on-last-release | sort -u)
held=$(cut -d' ' -f1 $W/counts.never | sort -u)
if [ "$(wc -l <$W/micros.never)" -eq "$N" ] && [ "$(wc -l <$W/micros.on-last-release)" -eq "$N" ] &&
    [ "$never_left" = "$held" ] && [ "$olr_left" = 0 ] && [ "$held" -gt 0 ]; then
    pass "timed $N poststops each; never kept all $held modules, on-last-release removed them"
else
    fail "poststop benchmark" "held '$held', left with never '$never_left', with on-last-release '$olr_left'"
fi
