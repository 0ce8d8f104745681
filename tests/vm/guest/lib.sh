# Helpers for the VM test cases (busybox sh). Sourced by /guest/runner and by
# every case; a case runs in its own shell with CASE set to its name.
#
# Results
#   pass NAME                  report a passing check
#   fail NAME WHY              report a failing check
#   begin NAME ... end         collect `want` conditions; end reports one result
#   want WHAT CMD [ARGS...]    within begin/end: CMD must succeed, else WHAT is
#                              added to the reasons for failure
#   want_loaded MOD...         these modules are in /proc/modules
#   want_not_loaded MOD...     these modules are not
#   want_mods SNAPSHOT         the loaded modules are exactly SNAPSHOT (from `mods`)
#   not CMD [ARGS...]          succeeds when CMD fails
# Modules
#   mods                       sorted names from /proc/modules
#   loaded MOD                 MOD is in /proc/modules
#   reset_modules              unload everything loaded since the VM booted
# Containers
#   run_ctr RUNTIME ID ENVVALUE [KEY=VALUE]
#       writes /run/bundles/ID/config.json (a busybox container; modgate as
#       its prestart hook; KERNEL_MODULES=ENVVALUE in process.env unless
#       ENVVALUE is empty; the annotation KEY=VALUE if given), runs it with
#       RUNTIME (crun or runc) and sets CTR_RC, CTR_BUNDLE and the files
#       CTR_OUT, CTR_ERR (the runtime's stdout and stderr) and CTR_LOG (the
#       hook's --log file). Knobs, as variables:
#         HOOK_PATH   hook executable (default /usr/bin/modgate)
#         HOOK_ARGS   JSON list items of the hook args; @STAGE@, @BUNDLE@ are
#                     replaced (default: "modgate","hook","@STAGE@","--log","@BUNDLE@/hook.log")
#         HOOK_STAGES hook stages to install (default: prestart; "none" for none)
#         CTR_ARGS    JSON list items of the container command
#   write_config BUNDLE ID ENVVALUE [KEY=VALUE]   only write the config.json
#   hook_state BUNDLE ID [STATUS]                 the OCI state JSON a runtime
#                                                 passes to a hook on stdin
#   hook_by_hand BUNDLE ID [ARGS...]
#       runs `modgate ARGS` (default: hook prestart) in BUNDLE with the OCI
#       state on stdin, as a runtime would; sets HOOK_RC and the files
#       HOOK_OUT, HOOK_ERR
#   start_ctr RUNTIME ID MODULES POLICY
#       a detached container that sleeps, with modgate (--policy POLICY) as its
#       prestart and poststop hook; sets START_RC
#   stop_ctr RUNTIME ID        kill and delete it (the runtime runs poststop);
#                              sets STOP_RC
#   poststop_ran ID            its hook log says it released
#   show FILE LABEL            print FILE indented, for the console log
# State (from `modgate status --json`, which the guest parses without jq)
#   status_json [ARGS...]      `modgate ARGS status --json` on one line, blanks removed
#   owner_of MOD               modgate / pre-existing; nothing when status omits MOD
#   holders_of MOD             the containers holding MOD, comma-separated; - for none
#   status_empty               status lists no module and no container

MODGATE=${MODGATE:-/usr/bin/modgate}
RESULTS=${RESULTS:-/tmp/modgate-results}
BASELINE=${BASELINE:-/tmp/modgate-baseline}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# Debian's busybox shell runs its own applets before anything on PATH: route
# the module tools to kmod, the reference implementation.
modprobe() { /sbin/modprobe "$@"; }
insmod() { /sbin/insmod "$@"; }
rmmod() { /sbin/rmmod "$@"; }
lsmod() { /sbin/lsmod "$@"; }
modinfo() { /sbin/modinfo "$@"; }
depmod() { /sbin/depmod "$@"; }

pass() {
    echo "@@MODGATE PASS $CASE: $1"
    echo "PASS $CASE: $1" >>"$RESULTS"
    return 0
}

fail() {
    echo "@@MODGATE FAIL $CASE: $1: ${2:-failed}"
    echo "FAIL $CASE: $1" >>"$RESULTS"
    return 0
}

not() { ! "$@"; }

begin() {
    _CHECK=$1
    _WHY=
}

_why() { _WHY="${_WHY:+$_WHY; }$1"; }

want() {
    _what=$1
    shift
    "$@" || _why "$_what"
    return 0
}

want_loaded() {
    _miss=
    for _m in "$@"; do loaded "$_m" || _miss="$_miss $_m"; done
    [ -z "$_miss" ] || _why "not loaded:$_miss"
    return 0
}

want_not_loaded() {
    _extra=
    for _m in "$@"; do loaded "$_m" && _extra="$_extra $_m"; done
    [ -z "$_extra" ] || _why "loaded but should not be:$_extra"
    return 0
}

want_mods() {
    _now=$(mods)
    if [ "$_now" != "$1" ]; then
        echo "$1" >/tmp/.want_mods.old
        echo "$_now" >/tmp/.want_mods.new
        _add=$(grep -vxF -f /tmp/.want_mods.old /tmp/.want_mods.new | tr '\n' ' ')
        _gone=$(grep -vxF -f /tmp/.want_mods.new /tmp/.want_mods.old | tr '\n' ' ')
        _why "module set changed (added: ${_add:-none}; removed: ${_gone:-none})"
    fi
    return 0
}

end() {
    if [ -z "$_WHY" ]; then pass "$_CHECK"; else fail "$_CHECK" "$_WHY"; fi
}

mods() {
    cut -d' ' -f1 /proc/modules | sort
}

loaded() {
    # /proc/modules spells every name with underscores.
    grep -q "^$(echo "$1" | tr - _) " /proc/modules
}

reset_modules() {
    _i=0
    while :; do
        _extra=$(mods | grep -vxF -f "$BASELINE")
        [ -z "$_extra" ] && return 0
        _i=$((_i + 1))
        if [ $_i -gt 30 ]; then
            echo "reset_modules: cannot unload:" $_extra
            return 1
        fi
        for _m in $_extra; do rmmod "$_m" 2>/dev/null; done
    done
}

show() {
    [ -s "$1" ] || return 0
    sed "s/^/    $2| /" "$1"
}

hook_state() {
    printf '{"ociVersion":"1.0.2","id":"%s","status":"%s","pid":1,"bundle":"%s","annotations":{}}' \
        "$2" "${3:-creating}" "$1"
}

_hooks_json() {
    _b=$1
    _stages=${HOOK_STAGES:-prestart}
    [ "$_stages" = none ] && return 0
    _args=${HOOK_ARGS:-'"modgate","hook","@STAGE@","--log","@BUNDLE@/hook.log"'}
    printf '\t"hooks": {\n'
    _sep=
    for _s in $_stages; do
        _a=$(echo "$_args" | sed -e "s|@STAGE@|$_s|g" -e "s|@BUNDLE@|$_b|g")
        printf '%s\t\t"%s": [ { "path": "%s", "args": [ %s ], "timeout": 60 } ]' \
            "$_sep" "$_s" "${HOOK_PATH:-$MODGATE}" "$_a"
        _sep=',
'
    done
    printf '\n\t},\n'
}

# Modelled on the output of `runc spec`: no terminal, a read-only busybox
# root shared by all containers, modgate as the prestart hook.
write_config() {
    _b=$1 _id=$2 _env=$3 _ann=${4:-}
    _envline=
    [ -n "$_env" ] && _envline=",
			\"KERNEL_MODULES=$_env\""
    _cargs=${CTR_ARGS:-'"sh", "-c", "echo hello from '"$_id"'"'}
    _annjson=
    [ -n "$_ann" ] && _annjson="
	\"annotations\": { \"${_ann%%=*}\": \"${_ann#*=}\" },"
    cat <<JSON
{
	"ociVersion": "1.0.2",$_annjson
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": [ $_cargs ],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"TERM=xterm"$_envline
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
		},
		"rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
		"noNewPrivileges": true
	},
	"root": { "path": "/ctr/rootfs", "readonly": true },
	"hostname": "$_id",
$(_hooks_json "$_b")	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		  "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
		{ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
		  "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" ] },
		{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		  "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
		{ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
		  "options": [ "nosuid", "noexec", "nodev" ] },
		{ "destination": "/sys", "type": "sysfs", "source": "sysfs",
		  "options": [ "nosuid", "noexec", "nodev", "ro" ] },
		{ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
		  "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
	],
	"linux": {
		"resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
		"namespaces": [
			{ "type": "pid" }, { "type": "network" }, { "type": "ipc" },
			{ "type": "uts" }, { "type": "mount" }
		],
		"maskedPaths": [
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
			"/proc/sched_debug", "/sys/firmware", "/proc/scsi"
		],
		"readonlyPaths": [
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
		]
	}
}
JSON
}

run_ctr() {
    _rt=$1 _id=$2 _env=$3 _ann=${4:-}
    CTR_BUNDLE=/run/bundles/$_id
    rm -rf "$CTR_BUNDLE"
    mkdir -p "$CTR_BUNDLE"
    write_config "$CTR_BUNDLE" "$_id" "$_env" "$_ann" >"$CTR_BUNDLE/config.json"
    CTR_OUT=$CTR_BUNDLE/stdout
    CTR_ERR=$CTR_BUNDLE/stderr
    CTR_LOG=$CTR_BUNDLE/hook.log
    timeout 120 "$_rt" run --bundle "$CTR_BUNDLE" "$_id" </dev/null >"$CTR_OUT" 2>"$CTR_ERR"
    CTR_RC=$?
    "$_rt" delete -f "$_id" >/dev/null 2>&1
    echo "  $_rt run $_id (KERNEL_MODULES=${_env:-<unset>}${_ann:+, annotation $_ann}): exit $CTR_RC"
    show "$CTR_OUT" stdout
    show "$CTR_ERR" stderr
    show "$CTR_LOG" hook.log
    return 0
}

hook_by_hand() {
    _b=$1 _id=$2
    shift 2
    [ $# -gt 0 ] || set -- hook prestart
    HOOK_OUT=$_b/hook.stdout
    HOOK_ERR=$_b/hook.stderr
    hook_state "$_b" "$_id" | (cd "$_b" && timeout 120 "$MODGATE" "$@") >"$HOOK_OUT" 2>"$HOOK_ERR"
    HOOK_RC=$?
    echo "  modgate $* (bundle $_b): exit $HOOK_RC"
    show "$HOOK_OUT" stdout
    show "$HOOK_ERR" stderr
    return 0
}

# new_bundle ID ENVVALUE [KEY=VALUE]: a bundle directory with a config.json,
# for hooks run by hand. Prints its path.
new_bundle() {
    _nb=/run/bundles/$1
    rm -rf "$_nb"
    mkdir -p "$_nb"
    write_config "$_nb" "$1" "$2" "${3:-}" >"$_nb/config.json"
    echo "$_nb"
}

# Within begin/end, after run_ctr RUNTIME: the container was refused, its command
# did not run, and the refusal can be read where that runtime leaves it, naming WORD
# when given: runc passes the hook's "modgate:" line on in its stderr; crun drops a
# hook's stderr and reports only the failed hook, so the hook's --log keeps the line.
want_refused() { # RUNTIME [WORD]
    want "container refused (exit $CTR_RC)" [ "$CTR_RC" -ne 0 ]
    want "container command did not run" not grep -q hello "$CTR_OUT"
    if [ "$1" = runc ]; then
        want "runc shows the hook's 'modgate:' line naming '${2:-}'" grep -q "modgate:.*${2:-}" "$CTR_ERR"
    else
        want "crun reports the failed hook" grep -qi hook "$CTR_ERR"
        want "the hook log names '${2:-}'" grep -qs -- "${2:-.}" "$CTR_LOG"
    fi
}

# The request of container number N in the concurrency cases: eight overlapping mixes.
mix_request() { # N
    case $(($1 % 8)) in
        0) echo ip_vs ;;
        1) echo ip_vs_wrr ;;
        2) echo ip_vs_rr,ip_vs ;;
        3) echo nf_conntrack ;;
        4) echo veth,dummy ;;
        5) echo ip_vs_wrr,ip_vs_rr,veth ;;
        6) echo dummy,nf_conntrack ;;
        7) echo ip_vs_sh,ip_vs_wrr ;;
    esac
}

# One line of stderr that starts with "modgate:" and contains WORD.
one_modgate_line() { # FILE WORD
    [ "$(grep -c . "$1")" -eq 1 ] && grep -q "^modgate:.*$2" "$1"
}

# Container ids and module names hold no blanks, so removing every blank and
# newline turns the pretty JSON into one line without changing a value.
status_json() { modgate "$@" status --json | tr -d ' \t\n'; }
# MOD's object in the modules list: objects there nest only a list, so splitting
# the list at "{" leaves one object a line.
_status_module() {
    status_json | sed 's/"containers":.*//' | tr '{' '\n' | grep "^\"name\":\"$1\","
}
owner_of() {
    case "$(_status_module "$1")" in
        *'"owned":true'*) echo modgate ;;
        *'"owned":false'*) echo pre-existing ;;
    esac
}
holders_of() {
    _h=$(_status_module "$1" | sed -n 's/.*"holders":\[\([^]]*\)\].*/\1/p' | tr -d '"')
    echo "${_h:--}"
}
status_empty() { [ "$(status_json)" = '{"modules":[],"containers":[]}' ]; }

# Integrity
#   integrity_certs            the kernel's build certificate, extracted from
#                              /boot/vmlinuz-$KV by `modgate certs extract` into
#                              /etc/modgate/certs (once) and copied into every
#                              /roots/*/etc/modgate/certs
#   sig_policy FILE [KEYS]     a policy FILE with require_signature = true and
#                              those certificates, plus the TOML lines KEYS
integrity_certs() {
    if ! ls /etc/modgate/certs/*.pem >/dev/null 2>&1; then
        modgate certs extract --from "/boot/vmlinuz-$KV" --out /etc/modgate/certs >/tmp/certs.out 2>&1 || {
            show /tmp/certs.out "certs extract"
            return 1
        }
    fi
    for _r in /roots/*/; do
        mkdir -p "${_r}etc/modgate"
        rm -rf "${_r}etc/modgate/certs"
        cp -r /etc/modgate/certs "${_r}etc/modgate/certs"
    done
}

sig_policy() { # FILE [KEYS]
    printf 'require_signature = true\ntrusted_certs = ["/etc/modgate/certs"]\n%s\n' "${2:-}" >"$1"
}

# start_ctr RUNTIME ID MODULES POLICY: a detached container that sleeps, with
# modgate as its prestart and poststop hook.
start_ctr() {
    _b=/run/bundles/$2
    rm -rf $_b
    mkdir -p $_b
    HOOK_STAGES="prestart poststop" \
        HOOK_ARGS='"modgate","hook","@STAGE@","--policy","'$4'","--log","@BUNDLE@/hook.log"' \
        CTR_ARGS='"sleep", "600"' write_config $_b $2 "$3" >$_b/config.json
    timeout 60 $1 run -d --bundle $_b $2 </dev/null >$_b/stdout 2>$_b/stderr
    START_RC=$?
    echo "  $1 run -d $2 (KERNEL_MODULES=$3, policy $(basename $4)): exit $START_RC"
    show $_b/stderr stderr
}

# stop_ctr RUNTIME ID: kill and delete; the runtime runs the poststop hook.
stop_ctr() {
    timeout 60 $1 delete -f $2 >/run/bundles/$2/delete.out 2>&1
    STOP_RC=$?
    echo "  $1 delete -f $2: exit $STOP_RC"
    show /run/bundles/$2/delete.out delete
    show /run/bundles/$2/hook.log hook.log
}

poststop_ran() { grep -q "container=$1 stage=poststop.*decision=released" /run/bundles/$1/hook.log; }
