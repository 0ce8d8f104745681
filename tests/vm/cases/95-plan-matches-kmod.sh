# `modgate plan --format modprobe` resolves like kmod's
# `modprobe --show-depends` on the same tree, and loads nothing.
same_plan() { # ROOT MODULE
    if [ "$1" = / ]; then
        modprobe --show-depends "$2" 2>&1 | sed 's/ *$//' >/tmp/plan.kmod
    else
        modprobe -d "$1" --show-depends "$2" 2>&1 | sed 's/ *$//' >/tmp/plan.kmod
    fi
    modgate --root "$1" plan --format modprobe "$2" 2>/tmp/plan.err | sed 's/ *$//' >/tmp/plan.modgate
    if ! cmp -s /tmp/plan.kmod /tmp/plan.modgate; then
        diff -u /tmp/plan.kmod /tmp/plan.modgate | sed 's/^/    /'
        show /tmp/plan.err stderr
        return 1
    fi
}

before=$(mods)
for m in ip_vs_wrr nf_conntrack br_netfilter sctp overlay veth dummy; do
    begin "plan --format modprobe $m equals modprobe --show-depends"
    want "same lines" same_plan / $m
    want_mods "$before"
    end
done
for z in xz zstd; do
    begin "plan --format modprobe ip_vs_wrr in /roots/$z equals kmod"
    want "same lines" same_plan /roots/$z ip_vs_wrr
    want_mods "$before"
    end
done
