# The seed example: KERNEL_MODULES=ip_vs,ip_vs_wrr in the container's
# environment loads ip_vs_wrr with its whole dependency chain before the
# container's command runs, through both runtimes.
for rt in crun runc; do
    reset_modules
    begin "$rt: KERNEL_MODULES=ip_vs,ip_vs_wrr loads the chain and the container runs"
    run_ctr "$rt" "seed-$rt" ip_vs,ip_vs_wrr
    want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
    want "container output seen" grep -qx "hello from seed-$rt" "$CTR_OUT"
    want_loaded ip_vs_wrr ip_vs nf_conntrack nf_defrag_ipv6 nf_defrag_ipv4 libcrc32c
    want "no runtime stderr" not test -s "$CTR_ERR"
    end
done

# The modules are already there: a second container is just as fine.
begin "runc: the same request again with everything loaded"
before=$(mods)
run_ctr runc seed-again ip_vs,ip_vs_wrr
want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
want "container output seen" grep -qx "hello from seed-again" "$CTR_OUT"
want_mods "$before"
end
