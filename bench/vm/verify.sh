# Runs inside the test VM (bench/verify): what the integrity checks cost on the real
# kernel, for ip_vs_wrr's closure: `modgate plan` and `modgate verify` (medians of N
# runs), per module the median time of the read, the sha256 and the signature check
# (`verify --timings`), and `modgate load ip_vs_wrr` from a clean state without and
# with require_signature (alternating). BENCH_RUNS sets N (default 11).
N=${BENCH_RUNS:-11}
now_ms() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + 10 * $(echo "${up#*.}" | sed 's/^0//') )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
info() { echo "@@MODGATE INFO $*"; }

integrity_certs || { fail "setup" "no build certificate"; return 0; }
sig_policy /tmp/sig.toml
: >/tmp/t.plan
: >/tmp/t.verify
: >/tmp/t.load
: >/tmp/t.loadsig
: >/tmp/t.modules
i=0
while [ $i -lt "$N" ]; do
    t0=$(now_ms); $MODGATE plan ip_vs_wrr >/dev/null; t1=$(now_ms)
    echo $((t1 - t0)) >>/tmp/t.plan
    t0=$(now_ms); $MODGATE verify --certs /etc/modgate/certs ip_vs_wrr >/dev/null; t1=$(now_ms)
    echo $((t1 - t0)) >>/tmp/t.verify
    # module read sha256 signature check (microseconds)
    $MODGATE verify --timings --certs /etc/modgate/certs ip_vs_wrr |
        awk '/^[a-z0-9_]+  \// {m = $1} /^  time / {gsub(",", ""); print m, $3, $6, $9, $13}' >>/tmp/t.modules
    reset_modules
    t0=$(now_ms); $MODGATE load ip_vs_wrr >/dev/null; t1=$(now_ms)
    loaded ip_vs_wrr || { fail "modgate load ip_vs_wrr" "not loaded"; break; }
    echo $((t1 - t0)) >>/tmp/t.load
    reset_modules
    t0=$(now_ms); $MODGATE load --policy /tmp/sig.toml ip_vs_wrr >/dev/null; t1=$(now_ms)
    loaded ip_vs_wrr || { fail "modgate load --policy sig ip_vs_wrr" "not loaded"; break; }
    echo $((t1 - t0)) >>/tmp/t.loadsig
    i=$((i + 1))
done
reset_modules
info "ip_vs_wrr's closure on the real kernel, median of $N (in the VM, TCG):"
info "  modgate plan ip_vs_wrr                          $(median </tmp/t.plan) ms"
info "  modgate verify ip_vs_wrr (whole closure)        $(median </tmp/t.verify) ms"
info "  modgate load ip_vs_wrr, no integrity keys       $(median </tmp/t.load) ms"
info "  modgate load ip_vs_wrr, require_signature       $(median </tmp/t.loadsig) ms"
info "  per module (us): read / sha256 / signature / whole check"
for m in $(cut -d' ' -f1 /tmp/t.modules | awk '!seen[$0]++'); do
    r=$(awk -v m="$m" '$1 == m {print $2}' /tmp/t.modules | median)
    h=$(awk -v m="$m" '$1 == m {print $3}' /tmp/t.modules | median)
    s=$(awk -v m="$m" '$1 == m {print $4}' /tmp/t.modules | median)
    c=$(awk -v m="$m" '$1 == m {print $5}' /tmp/t.modules | median)
    sz=$(find /lib/modules/$KV -name "$(echo "$m" | sed 's/_/[-_]/g').ko" -exec stat -c %s {} \; | head -1)
    info "    $(printf '%-16s %7s B  %6s / %6s / %6s / %6s' "$m" "$sz" "$r" "$h" "$s" "$c")"
done
pass "timed $N runs each"
