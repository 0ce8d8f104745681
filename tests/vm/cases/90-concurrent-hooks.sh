# 32 prestart hooks at once with overlapping requests, as when a pod of many
# containers starts: every hook succeeds quietly and every module is live. The
# hooks get --timeout 50: on one emulated CPU they queue behind each other for
# longer than the default load budget (this case is not about speed).
N=32

round() { # NAME
    for i in $(seq 1 $N); do
        b=/run/conc/c$i
        rm -rf $b
        mkdir -p $b
        write_config $b c$i "$(mix_request $i)" >$b/config.json
    done
    for i in $(seq 1 $N); do
        (
            b=/run/conc/c$i
            hook_state $b c$i | (cd $b && timeout 120 modgate hook prestart --timeout 50) >$b/out 2>$b/err
            echo $? >$b/rc
        ) &
    done
    wait
    bad=
    noisy=
    for i in $(seq 1 $N); do
        b=/run/conc/c$i
        rc=$(cat $b/rc 2>/dev/null || echo none)
        [ "$rc" = 0 ] || bad="$bad c$i($(mix_request $i): exit $rc)"
        if [ -s $b/err ]; then
            noisy="$noisy c$i"
            show $b/err "c$i stderr"
        fi
    done
    begin "$1"
    want "every hook exits 0:$bad" [ -z "$bad" ]
    want "no hook writes to stderr:$noisy" [ -z "$noisy" ]
    want_loaded ip_vs ip_vs_wrr ip_vs_rr ip_vs_sh nf_conntrack veth dummy
    end
}

start=$(date +%s)
round "$N concurrent hooks from a clean state"
echo "  first round: $(($(date +%s) - start)) s"
start=$(date +%s)
round "$N concurrent hooks with everything already loaded"
echo "  second round: $(($(date +%s) - start)) s"
