# modgate-runtime, the runc-compatible wrapper for Docker and containerd: for
# create and run it adds modgate's hooks to the bundle's config.json (once),
# then execs the real runtime (runc, or MODGATE_RUNTIME) with the same
# arguments; every other subcommand passes straight through.
mkdir -p /tmp/wrap
ln -sf /usr/bin/modgate /tmp/wrap/modgate-runtime
WRAP=/tmp/wrap/modgate-runtime

# wrap RUNTIME ID ARGS...: runs the wrapper with MODGATE_RUNTIME=RUNTIME and sets
# W_RC, W_OUT, W_ERR.
wrap() {
    _wrt=$1 _wid=$2
    shift 2
    W_OUT=/tmp/wrap/$_wid.stdout
    W_ERR=/tmp/wrap/$_wid.stderr
    MODGATE_RUNTIME=$_wrt timeout 120 "$WRAP" "$@" </dev/null >"$W_OUT" 2>"$W_ERR"
    W_RC=$?
    echo "  MODGATE_RUNTIME=$_wrt modgate-runtime $*: exit $W_RC"
    show "$W_OUT" stdout
    show "$W_ERR" stderr
}

for rt in runc crun; do
    reset_modules
    begin "$rt: modgate-runtime run on a config.json without hooks loads ip_vs_wrr"
    HOOK_STAGES=none
    b=$(new_bundle "wrap-$rt" ip_vs_wrr)
    unset HOOK_STAGES
    want "bundle starts without hooks" not grep -q '"hooks"' "$b/config.json"
    wrap "$rt" "wrap-$rt" run --bundle "$b" "wrap-$rt"
    "$rt" delete -f "wrap-$rt" >/dev/null 2>&1
    want "exit 0 (got $W_RC)" [ "$W_RC" -eq 0 ]
    want "container output seen" grep -qx "hello from wrap-$rt" "$W_OUT"
    want_loaded ip_vs_wrr ip_vs nf_conntrack
    want "modgate added at prestart" grep -q '"prestart":\[{"path":"/usr/bin/modgate","args":\["modgate","hook","prestart"\]' "$b/config.json"
    want "modgate added at poststop" grep -q '"poststop":\[{"path":"/usr/bin/modgate","args":\["modgate","hook","poststop"\]' "$b/config.json"
    end
done

reset_modules
begin "runc: a config.json that already runs modgate is not given a second prestart hook"
b=$(new_bundle wrap-once ip_vs_rr)
wrap runc wrap-once run -b "$b" wrap-once
runc delete -f wrap-once >/dev/null 2>&1
show "$b/hook.log" hook.log
want "exit 0 (got $W_RC)" [ "$W_RC" -eq 0 ]
want_loaded ip_vs_rr ip_vs
want "one prestart entry runs modgate" [ "$(grep -o '"/usr/bin/modgate"' "$b/config.json" | wc -l)" -eq 2 ]
want "the hook ran once at prestart" [ "$(grep -c 'stage=prestart' "$b/hook.log")" -eq 1 ]
end

reset_modules
begin "runc: modgate-runtime run refuses dccp with modgate's message"
before=$(mods)
HOOK_STAGES=none
b=$(new_bundle wrap-deny dccp)
unset HOOK_STAGES
wrap runc wrap-deny run --bundle "$b" wrap-deny
runc delete -f wrap-deny >/dev/null 2>&1
want "container refused (exit $W_RC)" [ "$W_RC" -ne 0 ]
want "runc shows the hook's 'modgate:' line naming dccp" grep -q 'modgate:.*dccp' "$W_ERR"
want_not_loaded dccp
want_mods "$before"
end

reset_modules
begin "runc: create, state and delete pass through modgate-runtime"
HOOK_STAGES=none
b=$(new_bundle wrap-pass ip_vs)
unset HOOK_STAGES
MODGATE_RUNTIME=runc timeout 60 "$WRAP" create --bundle "$b" wrap-pass </dev/null >/dev/null 2>&1
rc=$?
wrap runc wrap-pass-state state wrap-pass
want "create exits 0 (got $rc)" [ "$rc" -eq 0 ]
want "the prestart hook ran at create" loaded ip_vs
want "state says created" grep -q '"status": "created"' "$W_OUT"
wrap runc wrap-pass-del delete --force wrap-pass
want "delete exits 0 (got $W_RC)" [ "$W_RC" -eq 0 ]
want "the container is gone" not runc state wrap-pass
end
