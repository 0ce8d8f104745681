# Holding and release with real containers: two containers ask for
# ip_vs,ip_vs_wrr; stopping the first leaves the modules; stopping the second
# removes what modgate inserted with unload = "on-last-release" and keeps it
# with "never". nf_conntrack loaded by hand beforehand is never removed, by
# release, gc or unload.
LC=/tmp/lc
rm -rf /run/modgate $LC
mkdir -p $LC
modgate policy default >$LC/never.toml
sed 's/^unload = "never"$/unload = "on-last-release"/' $LC/never.toml >$LC/olr.toml
OLR=$LC/olr.toml
NEVER=$LC/never.toml

show_status() {
    modgate status >$LC/status 2>&1
    show $LC/status status
    status_json >$LC/status.json
}

# ---- without anything loaded by hand: the whole closure is modgate's -------
base=$(mods)
begin "on-last-release: the first stop keeps ip_vs, the last stop removes the closure modgate inserted"
start_ctr runc lc-a ip_vs,ip_vs_wrr $OLR
want "lc-a started (exit $START_RC)" [ "$START_RC" -eq 0 ]
start_ctr crun lc-b ip_vs,ip_vs_wrr $OLR
want "lc-b started (exit $START_RC)" [ "$START_RC" -eq 0 ]
want_loaded ip_vs ip_vs_wrr nf_conntrack libcrc32c
show_status
want "ip_vs is modgate's" [ "$(owner_of ip_vs)" = modgate ]
want "ip_vs held by lc-a and lc-b (got $(holders_of ip_vs))" [ "$(holders_of ip_vs)" = lc-a,lc-b ]
stop_ctr runc lc-a
want "lc-a's poststop ran" poststop_ran lc-a
want_loaded ip_vs ip_vs_wrr nf_conntrack
want "ip_vs held by lc-b only (got $(holders_of ip_vs))" [ "$(holders_of ip_vs)" = lc-b ]
want "ip_vs still modgate's after its inserter left" [ "$(owner_of ip_vs)" = modgate ]
stop_ctr crun lc-b
want "lc-b's poststop ran" poststop_ran lc-b
want_not_loaded ip_vs_wrr ip_vs nf_conntrack nf_defrag_ipv4 nf_defrag_ipv6 libcrc32c
want_mods "$base"
want "lc-b's log names what it unloaded" grep -q 'unloaded=ip_vs_wrr,ip_vs' /run/bundles/lc-b/hook.log
want "no record left" [ -z "$(ls /run/modgate/containers)" ]
end

# ---- nf_conntrack loaded by hand before any container ------------------------
reset_modules
rm -rf /run/modgate
modprobe nf_conntrack
pre=$(mods)

begin "never: both stops keep the modules; status shows them modgate's with no holders"
start_ctr runc lc-c ip_vs,ip_vs_wrr $NEVER
want "lc-c started (exit $START_RC)" [ "$START_RC" -eq 0 ]
start_ctr crun lc-d ip_vs,ip_vs_wrr $NEVER
want "lc-d started (exit $START_RC)" [ "$START_RC" -eq 0 ]
want "nf_conntrack is pre-existing (got $(owner_of nf_conntrack))" [ "$(owner_of nf_conntrack)" = pre-existing ]
stop_ctr runc lc-c
stop_ctr crun lc-d
want "lc-c's poststop ran" poststop_ran lc-c
want "lc-d's poststop ran" poststop_ran lc-d
want_loaded ip_vs ip_vs_wrr nf_conntrack
show_status
want "ip_vs modgate's with no holders (got $(owner_of ip_vs) $(holders_of ip_vs))" \
    [ "$(owner_of ip_vs) $(holders_of ip_vs)" = "modgate -" ]
want "ip_vs_wrr modgate's with no holders" [ "$(owner_of ip_vs_wrr) $(holders_of ip_vs_wrr)" = "modgate -" ]
want "no container in status" not grep -q '"id":"lc-' $LC/status.json
end

begin "never: gc keeps them, unload refuses nf_conntrack and removes ip_vs_wrr, ip_vs"
modgate gc --grace 0 --policy $NEVER >$LC/gc.out 2>&1
show $LC/gc.out gc
want "gc says it keeps them" grep -q 'kept .*ip_vs.*unload = "never"' $LC/gc.out
want_loaded ip_vs ip_vs_wrr
modgate unload nf_conntrack >$LC/unload.out 2>&1
rc=$?
show $LC/unload.out unload
want "unload nf_conntrack refused (exit $rc)" [ "$rc" -ne 0 ]
want "the refusal says modgate did not load it" grep -q 'modgate did not load it' $LC/unload.out
modgate unload ip_vs_wrr >$LC/unload.out 2>&1
rc=$?
show $LC/unload.out unload
want "unload ip_vs_wrr exits 0 (got $rc)" [ "$rc" -eq 0 ]
want_not_loaded ip_vs_wrr ip_vs
want_loaded nf_conntrack
want_mods "$pre"
end

begin "on-last-release: the last stop removes ip_vs_wrr and ip_vs, never nf_conntrack"
start_ctr crun lc-e ip_vs,ip_vs_wrr $OLR
want "lc-e started (exit $START_RC)" [ "$START_RC" -eq 0 ]
start_ctr runc lc-f ip_vs,ip_vs_wrr $OLR
want "lc-f started (exit $START_RC)" [ "$START_RC" -eq 0 ]
stop_ctr crun lc-e
want_loaded ip_vs ip_vs_wrr
stop_ctr runc lc-f
want "lc-f's poststop ran" poststop_ran lc-f
want_not_loaded ip_vs_wrr ip_vs
want_loaded nf_conntrack
want_mods "$pre"
end

begin "gc: a container whose poststop never ran is dropped and what it held removed"
# Prestart only: the record stays after the container is gone.
HOOK_ARGS='"modgate","hook","@STAGE@","--policy","'$OLR'","--log","@BUNDLE@/hook.log"' \
    run_ctr runc lc-g ip_vs,ip_vs_wrr
want "lc-g ran (exit $CTR_RC)" [ "$CTR_RC" -eq 0 ]
want "its record stays" [ -n "$(ls /run/modgate/containers)" ]
want_loaded ip_vs ip_vs_wrr
modgate gc --dry-run --grace 0 --policy $OLR >$LC/gc.out 2>&1
show $LC/gc.out "gc --dry-run"
want "dry run names the record" grep -q 'would drop the record of lc-g: container gone' $LC/gc.out
want "dry run names ip_vs" grep -q 'would unload ip_vs$' $LC/gc.out
want_loaded ip_vs ip_vs_wrr
modgate gc --grace 0 --policy $OLR >$LC/gc.out 2>&1
show $LC/gc.out gc
want "gc dropped lc-g" grep -q 'dropped the record of lc-g' $LC/gc.out
want "no record left" [ -z "$(ls /run/modgate/containers)" ]
want_not_loaded ip_vs_wrr ip_vs
want_loaded nf_conntrack
want_mods "$pre"
end

begin "unload --force removes a held module and names its holder"
start_ctr crun lc-h dummy $NEVER
want "lc-h started (exit $START_RC)" [ "$START_RC" -eq 0 ]
modgate unload dummy >$LC/unload.out 2>&1
rc=$?
show $LC/unload.out "unload dummy"
want "refused while held (exit $rc)" [ "$rc" -ne 0 ]
want "the refusal names lc-h" grep -q 'held by container lc-h' $LC/unload.out
want_loaded dummy
modgate unload --force dummy >$LC/unload.out 2>&1
rc=$?
show $LC/unload.out "unload --force dummy"
want "--force exits 0 (got $rc)" [ "$rc" -eq 0 ]
want "the warning names lc-h" grep -q 'warning: removing module "dummy" that container lc-h still holds' $LC/unload.out
want_not_loaded dummy
stop_ctr crun lc-h
want_loaded nf_conntrack
want_mods "$pre"
end
rm -rf /run/modgate
