#!/bin/sh
# modgate's node agent, install step (the DaemonSet's init container): copies the static
# binary onto the node and wires modgate into the node's container engine with
# `modgate --root /host install ...`. Idempotent; `install.sh uninstall` undoes it.
#
# Env: HOST (the node's / inside the pod, default /host), MODGATE (the binary in the
# image), ENGINE (auto|containerd|crio|isulad|none, default auto: the first engine whose
# socket exists), RESTART_ENGINE (true: restart containerd/isulad through the node's
# systemd after a change; needs hostPID), BIN (where the binary goes on the node).
set -eu
HOST=${HOST:-/host}
MODGATE=${MODGATE:-/usr/local/bin/modgate}
BIN=${BIN:-/usr/local/bin/modgate}
ENGINE=${ENGINE:-auto}
RESTART_ENGINE=${RESTART_ENGINE:-true}
log() { echo "modgate-agent: $*" >&2; }
m() { "$MODGATE" --root "$HOST" "$@"; }

detect() {
    if [ "$ENGINE" != auto ]; then echo "$ENGINE"; return; fi
    for s in run/containerd/containerd.sock; do
        [ -S "$HOST/$s" ] && { echo containerd; return; }
    done
    for s in run/crio/crio.sock var/run/crio/crio.sock; do
        [ -S "$HOST/$s" ] && { echo crio; return; }
    done
    for s in run/isulad.sock var/run/isulad.sock; do
        [ -S "$HOST/$s" ] && { echo isulad; return; }
    done
    echo none
}

# Restarts a systemd unit of the node (running containers survive: their shims stay).
restart() {
    [ "$RESTART_ENGINE" = true ] || { log "restart $1 on the node to apply (RESTART_ENGINE=$RESTART_ENGINE)"; return 0; }
    log "restarting $1 on the node"
    nsenter -t 1 -m -u -i -n -p -- systemctl restart "$1"
}

# An install's output names each file it created or rewrote; "unchanged:" otherwise.
changed() { grep -qE '^(created|wrote|linked) '; }

install_engine() {
    engine=$1
    case $engine in
        containerd)
            out=$(m install containerd --write --binary "$BIN" --wrapper "$BIN-runtime")
            echo "$out" >&2
            if echo "$out" | changed; then restart containerd; fi ;;
        crio)
            # CRI-O watches its hooks directories: no restart needed.
            m install hooks-d --when annotation --binary "$BIN" >&2 ;;
        isulad)
            out=$(m install isulad --daemon-default --binary "$BIN")
            echo "$out" >&2
            if echo "$out" | changed; then restart isulad; fi ;;
        none) log "no container engine found under $HOST (set ENGINE)"; return 1 ;;
        *) log "unknown ENGINE=$engine"; return 1 ;;
    esac
}

# Puts the engine's configuration back: `--revert` where the installer has it, else the
# .bak that every install keeps of the file it replaced.
uninstall_engine() {
    engine=$1
    case $engine in
        containerd) file=etc/containerd/config.toml; unit=containerd ;;
        isulad) file=etc/isulad/daemon.json; unit=isulad ;;
        crio)
            rm -f "$HOST"/usr/share/containers/oci/hooks.d/modgate-*.json
            return 0 ;;
        *) return 0 ;;
    esac
    if "$MODGATE" install "$engine" --help 2>/dev/null | grep -q -- '--revert'; then
        m install "$engine" --revert >&2
    elif [ "$engine" = isulad ]; then
        for f in etc/default/isulad/hooks/default.json etc/isulad/daemon.json; do
            [ -f "$HOST/$f.bak" ] && mv -f "$HOST/$f.bak" "$HOST/$f"
        done
    elif [ -f "$HOST/$file.bak" ]; then
        mv -f "$HOST/$file.bak" "$HOST/$file"
    else
        log "no $file.bak: remove modgate's entries from /$file by hand"
    fi
    restart "$unit"
}

case ${1:-install} in
    install)
        mkdir -p "$HOST$(dirname "$BIN")" "$HOST/etc/modgate"
        # Copy, then rename: a hook starting now runs the old binary or the new one.
        cp "$MODGATE" "$HOST$BIN.new"
        chmod 0755 "$HOST$BIN.new"
        mv -f "$HOST$BIN.new" "$HOST$BIN"
        ln -sfn "$(basename "$BIN")" "$HOST$BIN-runtime"
        engine=$(detect)
        log "engine: $engine"
        install_engine "$engine"
        echo "$engine" >"$HOST/etc/modgate/engine"
        ;;
    uninstall)
        engine=$(cat "$HOST/etc/modgate/engine" 2>/dev/null || detect)
        uninstall_engine "$engine"
        rm -f "$HOST$BIN-runtime" "$HOST$BIN" "$HOST/etc/modgate/engine" \
            "$HOST/etc/kubernetes/node-feature-discovery/features.d/modgate"
        log "uninstalled from the node ($engine); /etc/modgate/policy.toml and /run/modgate are kept"
        ;;
    *) echo "usage: install.sh [install|uninstall]" >&2; exit 2 ;;
esac
