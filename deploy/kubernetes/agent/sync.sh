#!/bin/sh
# modgate's node agent, sync loop (the DaemonSet's main container):
#  - keeps the node's /etc/modgate/policy.toml equal to the ConfigMap's policy, swapping
#    it atomically and only after `modgate policy show` has parsed it (a policy that does
#    not parse is never installed: the node keeps its last good one and the error is
#    logged);
#  - runs `modgate --root /host gc` every GC_INTERVAL seconds;
#  - publishes a Node Feature Discovery local feature file listing the modules the policy
#    allows (names listed in the effective `allow`, present on the node and allowed with
#    their dependencies) and those of them that are live.
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

mkdir -p "$WORK"

# The policy file parses (with the built-in default under it) when `policy show` can
# print the effective policy; what it says widens the default is logged.
parses() {
    if "$MODGATE" --root "$HOST" policy show --policy "$1" >"$WORK/show" 2>"$WORK/err"; then
        grep '^# widens the default' "$WORK/show" | sed 's/^# /modgate-agent: the new policy /' >&2
        return 0
    fi
    return 1
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
        if [ "$rejected" != "$sum" ]; then
            cat "$WORK/err" >&2
            log "the ConfigMap's policy does not parse: kept the node's current policy"
        fi
        rejected=$sum
    fi
}

# The plain names (no glob) of the effective policy's allow list (the node's policy
# file over the built-in default).
allow_names() {
    "$MODGATE" --root "$HOST" policy show 2>/dev/null |
        sed -n 's/^allow = \[\(.*\)\]  #.*/\1/p' |
        grep -o '"[^"]*"' | tr -d '"' | grep -v '[]*?[]'
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
