# Compressed module trees. This kernel has no in-kernel module decompression,
# so modgate must decompress .ko.xz and .ko.zst in userspace.
rt=crun
for z in xz zstd; do
    reset_modules
    begin "modgate --root /roots/$z load ip_vs_wrr"
    modgate --root /roots/$z load ip_vs_wrr >/tmp/load.out 2>/tmp/load.err
    rc=$?
    show /tmp/load.out stdout
    show /tmp/load.err stderr
    want "exit 0 (got $rc)" [ "$rc" -eq 0 ]
    want_loaded ip_vs_wrr ip_vs nf_conntrack nf_defrag_ipv6 nf_defrag_ipv4 libcrc32c
    end

    reset_modules
    begin "$rt: hook with --root /roots/$z loads ip_vs_rr and veth"
    HOOK_ARGS='"modgate","--root","/roots/'$z'","hook","@STAGE@","--log","@BUNDLE@/hook.log"' \
        run_ctr $rt "z-$z" ip_vs_rr,veth
    want "container exits 0 (got $CTR_RC)" [ "$CTR_RC" -eq 0 ]
    want "container output seen" grep -qx "hello from z-$z" "$CTR_OUT"
    want_loaded ip_vs_rr ip_vs nf_conntrack veth
    end
    rt=runc
done
