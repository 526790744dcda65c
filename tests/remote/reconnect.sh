#!/usr/bin/env bash
# Connection loss (docs/remote.md): the remote target is killed (SIGKILL) in the middle of a
# workload and restarted on the same port. Both remote miniports must reconnect, re-issue what
# was in flight, and finish the workload: every write that was acknowledged is there afterwards
# and nothing hangs. With the target gone for longer than ReconnectTimeoutMs, requests must come
# back with an error, in bounded time. The workload is four writers at once (`storstack io`
# clients of one served stack, each on its own range) plus a queue-depth-32 random-read
# benchmark. Last, a target that stops answering without closing the connection (SIGSTOP): the
# command times out through Storport's error recovery (a bus reset that drops the session) and the
# adapter works again once the target does.
# Usage: tests/remote/reconnect.sh [--build DIR]         Exit 77 when a peer is not installed.
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
[ "${1:-}" = --build ] && build=$2
. "$here/lib.sh"
need nbdkit tgtd tgtadm

# workload SOCK LABEL KILL RESTART: writers and a benchmark, the target killed after 0.7 s
# and restarted after another second by the two commands given.
workload() {
    local sock=$1 label=$2 kill_cmd=$3 restart_cmd=$4 w=() i rc
    for i in 0 1 2 3; do
        "$bin" io --server "$sock" PhysicalDrive0 write --offset $((i * 40))M --length 32M \
            --chunk 64K --pattern random:$((100 + i)) >"$tmp/w$i.log" 2>&1 &
        w+=($!)
    done
    # many requests in flight at the kill; reads, so the writers' ranges stay theirs
    "$bin" bench --server "$sock" PhysicalDrive0 --rw randread --bs 4K --qd 32 --seconds 4 \
        --size 128M >"$tmp/bench.log" 2>&1 &
    w+=($!)
    sleep 0.7
    eval "$kill_cmd"
    alive=0
    for i in 0 1 2 3; do kill -0 "${w[$i]}" 2>/dev/null && alive=$((alive + 1)); done
    echo "$label: target killed with $alive of 4 writers still writing"
    [ $alive -gt 0 ] || { cat "$tmp"/w?.log; die "$label: the writers finished before the kill; the test proves nothing"; }
    sleep 1
    eval "$restart_cmd"
    echo "$label: target restarted"
    rc=0
    for i in "${!w[@]}"; do
        # nothing may hang: each client has 60 s
        for _ in $(seq 600); do kill -0 "${w[$i]}" 2>/dev/null || break; sleep 0.1; done
        kill -0 "${w[$i]}" 2>/dev/null && { kill -KILL "${w[$i]}"; die "$label: client $i hangs"; }
        wait "${w[$i]}" || { rc=1; cat "$tmp/w$i.log" "$tmp/bench.log" 2>/dev/null; }
    done
    [ $rc = 0 ] || die "$label: a request failed although the target came back"
    cat "$tmp/bench.log"
    for i in 0 1 2 3; do
        "$bin" io --server "$sock" PhysicalDrive0 verify --offset $((i * 40))M --length 32M \
            --pattern random:$((100 + i)) || die "$label: an acknowledged write is missing (range $i)"
    done
}

# gives_up SOCK LABEL KILL: the target killed for good; a writer must fail, not hang.
gives_up() {
    local sock=$1 label=$2 start end
    eval "$3"
    start=$(date +%s)
    timeout 60 "$bin" io --server "$sock" PhysicalDrive0 write --offset 0 --length 1M \
        --pattern 0x33 >"$tmp/gone.log" 2>&1
    rc=$?
    end=$(date +%s)
    cat "$tmp/gone.log"
    [ $rc = 124 ] && die "$label: a write to a target that is gone hangs"
    [ $rc = 0 ] && die "$label: a write to a target that is gone succeeded"
    [ $((end - start)) -le 30 ] || die "$label: the error took $((end - start)) s"
    echo "$label: the write failed after $((end - start)) s, as it should"
}

echo "== NBD miniport: nbdkit (file plugin) killed and restarted mid-workload"
truncate -s 256M "$tmp/nbd.img"
nport=$(free_port)
start_nbdkit() {
    bg nbdkit nbdkit -f -i 127.0.0.1 -p "$nport" file "$tmp/nbd.img"
    nbdkit_pid=$last_pid
    wait_port "$nport"
}
start_nbdkit
nbd_config "$tmp/nbd.ini" "nbd://127.0.0.1:$nport" "ReconnectTimeoutMs = 3000"
serve nbd --config "$tmp/nbd.ini"
workload "$serve_sock" nbd 'stop $nbdkit_pid KILL' 'start_nbdkit'
grep -q "connection lost, reconnecting" "$tmp/nbd.log" || die "nbd: no reconnection happened"
gives_up "$serve_sock" nbd 'stop $nbdkit_pid KILL'
stop "$serve_pid"

echo "== iSCSI miniport: tgtd killed and restarted mid-workload"
tgtd_start
iscsi_config "$tmp/iscsi.ini" "127.0.0.1:$tgt_port" "$tgt_iqn" "ReconnectTimeoutMs = 3000"
serve iscsi --config "$tmp/iscsi.ini"
workload "$serve_sock" iscsi 'stop $tgtd_pid KILL' 'tgtd_start'
grep -q "session lost, reconnecting" "$tmp/iscsi.log" || die "iscsi: no reconnection happened"
grep -q "session re-established" "$tmp/iscsi.log" || die "iscsi: not re-established"
gives_up "$serve_sock" iscsi 'stop $tgtd_pid KILL'
stop "$serve_pid"

echo "== iSCSI miniport: a target that stops answering (SIGSTOP) is reset, nothing hangs"
tgtd_start
serve iscsi-silent --config "$tmp/iscsi.ini"
"$bin" io --server "$serve_sock" PhysicalDrive0 write --offset 200M --length 1M --pattern random:7 ||
    die "write before the stop"
kill -STOP "$tgtd_pid"
start=$(date +%s)
# READ(10) of 8 blocks with a 2 s timeout: Storport's recovery ends in HwStorResetBus, which must
# let go of the request so that Storport can complete it
timeout 60 "$bin" scsi --server "$serve_sock" PhysicalDrive0 raw 28000000000000000800 --in 4096 \
    --timeout 2 >"$tmp/silent.out" 2>&1
rc=$?
kill -CONT "$tgtd_pid"
cat "$tmp/silent.out"
[ $rc = 124 ] && die "a command to a silent target hangs"
[ $rc = 0 ] && die "a command to a stopped target succeeded"
grep -q STATUS_IO_TIMEOUT "$tmp/silent.out" || die "the command did not end as a timeout"
echo "silent target: the command failed after $(($(date +%s) - start)) s"
"$bin" io --server "$serve_sock" PhysicalDrive0 verify --offset 200M --length 1M --pattern random:7 ||
    die "the adapter does not work again after the reset"
kill -TERM "$serve_pid"
wait "$serve_pid"
rc=$?
[ $rc = 0 ] || { tail -20 "$tmp/iscsi-silent.log"; die "serve exited with $rc after the reset (a request completed twice?)"; }
echo PASS
