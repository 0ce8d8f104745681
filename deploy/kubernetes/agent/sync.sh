#!/bin/sh
# modgate's node agent, sync loop (the DaemonSet's main container):
#  - keeps the node's /etc/modgate/policy.toml equal to the ConfigMap's policy, swapping
#    it atomically and only after modgate has parsed it (a policy that does not parse is
#    never installed: the node keeps its last good one and the error is logged);
#  - runs `modgate --root /host gc` every GC_INTERVAL seconds;
#  - publishes a Node Feature Discovery local feature file listing the modules the policy
#    allows (names listed in `allow`, present on the node) and those that are live.
#
# Env: HOST (default /host), MODGATE (the binary in the image), POLICY_SRC (the
# ConfigMap's file, default /config/policy.toml), SYNC_INTERVAL (30), GC_INTERVAL (300),
# ONCE (1: one round, then exit).
set -u
HOST=${HOST:-/host}
MODGATE=${MODGATE:-/usr/local/bin/modgate}
POLICY_SRC=${POLICY_SRC:-/config/policy.toml}
SYNC_INTERVAL=${SYNC_INTERVAL:-30}
GC_INTERVAL=${GC_INTERVAL:-300}
POLICY=$HOST/etc/modgate/policy.toml
FEATURES=$HOST/etc/kubernetes/node-feature-discovery/features.d/modgate
KV=${KERNEL_RELEASE:-$(uname -r)}
WORK=${TMPDIR:-/tmp}/modgate-agent
log() { echo "modgate-agent: $*" >&2; }

# A root with one module, in which `policy check` can give a verdict whatever the node
# has: a verdict ("allowed:"/"denied:") means the policy file parsed.
mkdir -p "$WORK/probe/lib/modules/$KV" "$WORK/probe/proc/sys/kernel"
echo "kernel/modgate_probe.ko:" >"$WORK/probe/lib/modules/$KV/modules.dep"
echo "$KV" >"$WORK/probe/proc/sys/kernel/osrelease"
parses() {
    out=$("$MODGATE" --root "$WORK/probe" --kernel-release "$KV" policy check --policy "$1" modgate_probe 2>&1)
    case $out in
        allowed:* | denied:*) return 0 ;;
        *) echo "$out" >&2; return 1 ;;
    esac
}

rejected=""
sync_policy() {
    [ -f "$POLICY_SRC" ] || { log "no $POLICY_SRC"; return 0; }
    cmp -s "$POLICY_SRC" "$POLICY" && return 0
    sum=$(cksum <"$POLICY_SRC")
    mkdir -p "$(dirname "$POLICY")"
    tmp=$POLICY.new.$$
    cp "$POLICY_SRC" "$tmp"
    if parses "$tmp"; then
        chmod 0644 "$tmp"
        mv -f "$tmp" "$POLICY"
        rejected=""
        log "installed the new policy as /etc/modgate/policy.toml"
    else
        rm -f "$tmp"
        [ "$rejected" = "$sum" ] || log "the ConfigMap's policy does not parse: kept the node's current policy"
        rejected=$sum
    fi
}

# The plain names (no glob) of the policy's allow list.
allow_names() {
    sed 's/#.*//' "$POLICY" | awk '
        /^[ \t]*allow[ \t]*=/ { on = 1 }
        on { print; if (index($0, "]")) on = 0 }' |
        grep -o '"[^"]*"' | tr -d '"' | grep -v '[]*?[]' | sort -u
}

publish_features() {
    [ -f "$POLICY" ] || return 0
    mkdir -p "$(dirname "$FEATURES")"
    tmp=$FEATURES.new.$$
    echo "modgate-installed=true" >"$tmp"
    for name in $(allow_names); do
        if "$MODGATE" --root "$HOST" --kernel-release "$KV" policy check "$name" >/dev/null 2>&1; then
            echo "modgate-allowed-$name=true" >>"$tmp"
        fi
        if [ -d "$HOST/sys/module/$name" ]; then
            echo "modgate-live-$name=true" >>"$tmp"
        fi
    done
    if cmp -s "$tmp" "$FEATURES"; then rm -f "$tmp"; else mv -f "$tmp" "$FEATURES"; fi
}

last_gc=0
while :; do
    sync_policy
    publish_features
    now=$(date +%s)
    if [ $((now - last_gc)) -ge "$GC_INTERVAL" ]; then
        "$MODGATE" --root "$HOST" --kernel-release "$KV" gc || log "gc failed"
        last_gc=$now
    fi
    [ "${ONCE:-0}" = 1 ] && exit 0
    sleep "$SYNC_INTERVAL"
done
