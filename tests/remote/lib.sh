# Shared by the tests/remote/*.sh scripts: a private temporary directory, peers started in the
# background and stopped on exit (even on failure), free loopback ports, and the skip rule
# (exit 77 when a peer is not installed; scripts/install-deps.sh test installs them all).
# Source it after setting `build`; it sets bin, tmp and the trap.
set -uo pipefail
bin="$build/storstack"
[ -x "$bin" ] || { echo "$0: no $bin (build first)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/storstack-remote.XXXXXX)
pids=()
cleanup_hooks=()

rt_cleanup() {
    local h p
    exec 2>/dev/null # the shell's "Killed" notices for peers stopped here
    for h in "${cleanup_hooks[@]}"; do eval "$h"; done
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    [ -n "${tgtd_pid:-}" ] && kill -KILL "$tgtd_pid" 2>/dev/null # it ignores TERM with targets
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap rt_cleanup EXIT
trap 'exit 1' INT TERM

# need TOOL... : exit 77 (skipped) when one is missing.
need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "SKIP: $t not installed (scripts/install-deps.sh test)"; exit 77; }
    done
}

die() {
    echo "FAIL: $*" >&2
    exit 1
}

# free_port: a loopback TCP port nobody listens on now.
free_port() {
    local p
    for _ in $(seq 100); do
        # below the ephemeral range (32768-60999), where outgoing connections take local ports
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s).
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1"
}

# bg NAME CMD...: starts CMD in the background, output in $tmp/NAME.log; its pid in $last_pid.
bg() {
    local name=$1
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    last_pid=$!
    pids+=("$last_pid")
}

# stop PID [SIGNAL]: stops one peer started with bg and waits for it.
stop() {
    kill "-${2:-TERM}" "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# serve NAME ARGS...: `storstack serve` with a private socket and an iSCSI portal on a free
# port; sets serve_pid, serve_sock, serve_port and serve_iqn.
serve() {
    local name=$1
    shift
    serve_sock="$tmp/$name.sock"
    bg "$name" "$bin" serve --socket "$serve_sock" --iscsi-portal 127.0.0.1:0 "$@"
    serve_pid=$last_pid
    for _ in $(seq 150); do
        grep -q "serving on" "$tmp/$name.log" 2>/dev/null && break
        kill -0 "$serve_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "serving on" "$tmp/$name.log" || { cat "$tmp/$name.log"; die "storstack serve $name did not start"; }
    serve_port=$(sed -n 's/^storstack: iSCSI target .* on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/$name.log")
    serve_iqn=$(sed -n 's/^storstack: iSCSI target \(.*\) on 127\.0\.0\.1:[0-9]*$/\1/p' "$tmp/$name.log")
    [ -n "$serve_port" ] || die "no iSCSI portal in the output of serve $name"
}

# tgtd_start: a private tgtd on a free port with target $tgt_iqn, LUN 1 a 256 MiB RAM-backed
# file in /dev/shm (thin provisioned: UNMAP, WRITE SAME, GET LBA STATUS); sets tgt_port.
tgtd_start() {
    tgt_port=${tgt_port:-$(free_port)}
    tgt_ctl=${tgt_ctl:-$((1000 + $$ % 30000))}
    tgt_iqn=iqn.2026-11.org.storstack.test:remote
    tgt_img=${tgt_img:-/dev/shm/storstack-remote-$$.img}
    [ -e "$tgt_img" ] || truncate -s 256M "$tgt_img"
    cleanup_hooks+=("rm -f $tgt_img")
    bg tgtd tgtd -f -C "$tgt_ctl" --iscsi "portal=127.0.0.1:$tgt_port"
    tgtd_pid=$last_pid
    wait_port "$tgt_port"
    tgtadm -C "$tgt_ctl" --lld iscsi --op new --mode target --tid 1 -T "$tgt_iqn" &&
        tgtadm -C "$tgt_ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$tgt_img" &&
        tgtadm -C "$tgt_ctl" --lld iscsi --op update --mode logicalunit --tid 1 --lun 1 \
            --params thin_provisioning=1 &&
        tgtadm -C "$tgt_ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL ||
        die "tgtadm could not configure tgtd"
}

# iscsi_config FILE PORTAL IQN [extra Device Parameters lines]: an iscsiprt adapter.
iscsi_config() {
    local f=$1 portal=$2 iqn=$3
    shift 3
    {
        echo '[Enum\Root\ISCSIPRT\0000]'
        echo 'HardwareID = multi:ROOT\ISCSIPRT'
        echo 'DeviceDesc = storstack iSCSI initiator'
        echo '[Enum\Root\ISCSIPRT\0000\Device Parameters]'
        echo "Portal = $portal"
        echo "TargetName = $iqn"
        for l in "$@"; do echo "$l"; done
    } >"$f"
}

# nbd_config FILE URI [extra unit lines]: a vminiport adapter with one NBD-backed disk.
nbd_config() {
    local f=$1 uri=$2
    shift 2
    {
        echo '[Enum\Root\VMINIPORT\0000]'
        echo 'HardwareID = multi:ROOT\VMINIPORT'
        echo 'DeviceDesc = storstack NBD adapter'
        echo '[Enum\Root\VMINIPORT\0000\Device Parameters\Target0\Lun0]'
        echo 'Backend = nbd'
        echo "Uri = $uri"
        for l in "$@"; do echo "$l"; done
    } >"$f"
}
