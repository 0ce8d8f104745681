# Users the kernel does not count: a veth pair holds no reference on veth, yet
# removing veth destroys the pair (every container's, host-wide). A container
# asks for veth with unload = "on-last-release"; a pair is made on the host; the
# container stops: veth stays, the pair survives, and the hook's log, status, gc
# and unload say why. Once the pair is deleted, gc removes veth; the same for a
# pair wholly inside another network namespace. A mounted
# overlay keeps overlay the same way (there the mount also holds a reference).
# never_unload keeps a module nothing visible uses.
LU=/tmp/lu
rm -rf /run/modgate $LU
mkdir -p $LU
modgate policy default | sed 's/^unload = "never"$/unload = "on-last-release"/' >$LU/olr.toml
OLR=$LU/olr.toml
# The hook, gc and unload read the same policy.
mkdir -p /etc/modgate
cp $OLR /etc/modgate/policy.toml

# busybox ip makes a pair from `type veth`; the kernel names the peer (veth0).
pair_up() { ip link add lu-va type veth && [ -e /sys/class/net/lu-va ]; }
pair_there() { [ -e /sys/class/net/lu-va ]; }

begin "on-last-release keeps veth while a veth pair exists; gc removes it once the pair is gone"
start_ctr runc lu-a veth $OLR
want "lu-a started (exit $START_RC)" [ "$START_RC" -eq 0 ]
want_loaded veth
want "veth is modgate's" [ "$(owner_of veth)" = modgate ]
want "a veth pair made on the host" pair_up
ip -o link show >$LU/links 2>&1
show $LU/links "ip link"
want "veth has no reference count ($(cat /sys/module/veth/refcnt))" [ "$(cat /sys/module/veth/refcnt)" = 0 ]
stop_ctr runc lu-a
want "lu-a's poststop ran" poststop_ran lu-a
want_loaded veth
want "the pair survives lu-a" pair_there
want "the hook log says why veth stays" grep -q 'left loaded: used by network link .*lu-va (kind veth), which hold no reference on it' /run/bundles/lu-a/hook.log
modgate status >$LU/status 2>&1
show $LU/status status
want "status says why veth stays" grep -q '^kept veth: used by network link .*lu-va (kind veth)' $LU/status
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out gc
want "gc leaves veth and says why" grep -q '^left veth: used by network link .*lu-va (kind veth)' $LU/gc.out
want_loaded veth
want "the pair survives gc" pair_there
modgate unload veth >$LU/unload.out 2>&1
rc=$?
show $LU/unload.out "unload veth"
want "unload veth refused (exit $rc)" [ "$rc" -ne 0 ]
want "the refusal names the link" grep -q 'module "veth" not unloaded: used by network link .*lu-va' $LU/unload.out
want "the pair survives unload" pair_there
ip link del lu-va
want "the pair is gone" not pair_there
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out "gc after the pair is gone"
want "gc unloads veth" grep -q '^unloaded veth$' $LU/gc.out
want_not_loaded veth
end

begin "a veth pair inside another network namespace keeps veth too"
start_ctr runc lu-d veth $OLR
want "lu-d started (exit $START_RC)" [ "$START_RC" -eq 0 ]
unshare -n sh -c 'ip link add lu-vd type veth && exec sleep 600' &
NSPID=$!
sleep 1
stop_ctr runc lu-d
want "lu-d's poststop ran" poststop_ran lu-d
want_loaded veth
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out gc
want "gc names the link and its namespace" grep -q '^left veth: used by network link .*lu-vd (kind veth) in the network namespace of process [0-9]' $LU/gc.out
kill $NSPID
wait $NSPID
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out "gc once the namespace is gone"
want "gc unloads veth" grep -q '^unloaded veth$' $LU/gc.out
want_not_loaded veth
end

begin "on-last-release keeps overlay while an overlay is mounted; gc removes it once unmounted"
start_ctr crun lu-b overlay $OLR
want "lu-b started (exit $START_RC)" [ "$START_RC" -eq 0 ]
want_loaded overlay
mkdir -p $LU/lower $LU/upper $LU/work $LU/merged
want "an overlay mounted on the host" mount -t overlay lu-ovl -o lowerdir=$LU/lower,upperdir=$LU/upper,workdir=$LU/work $LU/merged
stop_ctr crun lu-b
want "lu-b's poststop ran" poststop_ran lu-b
want_loaded overlay
want "the overlay is still mounted" grep -q " $LU/merged overlay " /proc/mounts
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out gc
want "gc leaves overlay" grep -q "^left overlay: " $LU/gc.out
want_loaded overlay
umount $LU/merged
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out "gc after umount"
want "gc unloads overlay" grep -q '^unloaded overlay$' $LU/gc.out
want_not_loaded overlay
end

begin "never_unload keeps a module nothing visible uses"
sed 's/^never_unload = .*/never_unload = ["dummy"]/' $OLR >/etc/modgate/policy.toml
start_ctr runc lu-c dummy /etc/modgate/policy.toml
want "lu-c started (exit $START_RC)" [ "$START_RC" -eq 0 ]
stop_ctr runc lu-c
want "lu-c's poststop ran" poststop_ran lu-c
want_loaded dummy
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out gc
want "the hook log names never_unload" grep -q 'left loaded: listed in never_unload (dummy)' /run/bundles/lu-c/hook.log
want "gc names never_unload" grep -q '^left dummy: listed in never_unload (dummy) of policy /etc/modgate/policy.toml' $LU/gc.out
cp $OLR /etc/modgate/policy.toml
modgate gc --grace 0 >$LU/gc.out 2>&1
show $LU/gc.out "gc without it"
want "gc unloads dummy (dummy0, which dummy makes itself, is no user)" grep -q '^unloaded dummy$' $LU/gc.out
want_not_loaded dummy
end
rm -rf /run/modgate /etc/modgate/policy.toml
