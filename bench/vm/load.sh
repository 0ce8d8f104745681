# Runs inside the test VM (bench/vm-load): loads ip_vs_wrr from a clean state with
# kmod's modprobe and with `modgate load`, alternating, on the same kernel in the same
# boot, and prints the median wall time of each and their ratio; the case fails when
# modgate's median is the longer (target ratio <= 1.0).
N=${BENCH_RUNS:-11}
# TCG translates guest code per virtual address: with address randomisation every run of
# a position-independent program (modprobe and its libraries, modgate's static PIE) is
# translated afresh, a cost of the emulator, not of the tools. Both run with it off.
aslr=$(cat /proc/sys/kernel/randomize_va_space)
echo 0 >/proc/sys/kernel/randomize_va_space
# busybox's date has no %N: /proc/uptime counts in 10 ms steps, fine for loads that
# take hundreds of milliseconds under emulation.
now_ms() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + 10 * $(echo "${up#*.}" | sed 's/^0//') )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >/tmp/t.modprobe
: >/tmp/t.modgate
i=0
while [ $i -lt "$N" ]; do
    reset_modules
    t0=$(now_ms); modprobe ip_vs_wrr; t1=$(now_ms)
    loaded ip_vs_wrr || { fail "modprobe ip_vs_wrr" "not loaded"; break; }
    echo $((t1 - t0)) >>/tmp/t.modprobe
    reset_modules
    t0=$(now_ms); $MODGATE load ip_vs_wrr >/dev/null; t1=$(now_ms)
    loaded ip_vs_wrr || { fail "modgate load ip_vs_wrr" "not loaded"; break; }
    echo $((t1 - t0)) >>/tmp/t.modgate
    i=$((i + 1))
done
reset_modules
echo "$aslr" >/proc/sys/kernel/randomize_va_space
mp=$(median </tmp/t.modprobe)
mg=$(median </tmp/t.modgate)
echo "@@MODGATE INFO load ip_vs_wrr from a clean state, median of $N (in the VM, TCG):"
echo "@@MODGATE INFO   modprobe ip_vs_wrr      ${mp} ms"
echo "@@MODGATE INFO   modgate load ip_vs_wrr  ${mg} ms"
echo "@@MODGATE INFO   ratio modgate/modprobe: $(awk -v a="$mg" -v b="$mp" 'BEGIN {printf "%.2f", a / b}') (target <= 1.0)"
if [ "$mg" -le "$mp" ]; then
    pass "modgate load takes no longer than modprobe ($N loads each)"
else
    fail "modgate load takes no longer than modprobe ($N loads each)" "median ${mg} ms against ${mp} ms"
fi
