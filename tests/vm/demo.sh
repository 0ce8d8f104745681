# The demo shown by scripts/demo: a container asks for IPVS through
# KERNEL_MODULES and gets it from modgate, its prestart hook.
heading() {
    echo
    echo "==== $* ===="
}

heading "Kernel $(uname -r) in a VM: lsmod | grep ip_vs (before)"
lsmod | grep ip_vs || echo "(no output: no ip_vs module is loaded)"

heading "A busybox container; its config.json asks for modules and runs modgate before it starts"
b=$(new_bundle demo ip_vs,ip_vs_wrr)
grep -E 'KERNEL_MODULES|"prestart"' "$b/config.json" | sed 's/^[[:space:]]*/    /'

heading "crun run demo"
run_ctr crun demo ip_vs,ip_vs_wrr

heading "lsmod | grep ip_vs (after)"
lsmod | grep ip_vs

echo
begin "the container ran and its prestart hook loaded ip_vs and ip_vs_wrr"
want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
want "container output seen" grep -qx "hello from demo" "$CTR_OUT"
want_loaded ip_vs ip_vs_wrr
end
