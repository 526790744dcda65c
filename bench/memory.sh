# shellcheck shell=bash
# bench/memory.sh: resident memory (VmRSS of /proc/PID/status):
#  - the default `storstack serve` (built-in default stack: a 1 GiB sparse RAM disk, the iSCSI
#    target, the management socket) at idle, once its stack is up;
#  - a 1 TiB sparse RAM disk served by `storstack serve` after 1 GiB written to it through the
#    management socket (`storstack bench --server ... --size 1G --prefill`: sequential 1 MiB
#    writes of random data, 8 in flight, then 1 s of reads of that range);
#  - per idle iSCSI session: the RSS growth of the default serve while bench/sessions holds 100
#    logged-in sessions, divided by 100; beside tgtd measured the same way.
# Each figure: the median of REPEAT rounds, each round in fresh processes (memory a process
# has freed is not given back at once, so a second measurement in the same process would read
# less). Sourced by bench/run.sh.

readonly SESSIONS=100

# hold_sessions NAME PORT IQN LUN: starts bench/sessions with SESSIONS sessions; sets HOLD_PID,
# returns once all are logged in
hold_sessions() {
    local name=$1 port=$2 iqn=$3 lun=$4 i
    rm -f "$WORK/$name.fifo"
    mkfifo "$WORK/$name.fifo"
    exec {HOLD_FD}<>"$WORK/$name.fifo"
    "$BENCH_BIN/sessions" --portal "127.0.0.1:$port" --target "$iqn" --lun "$lun" \
        --count "$SESSIONS" <"$WORK/$name.fifo" >"$WORK/$name.out" 2>&1 &
    HOLD_PID=$!
    register_pid "$HOLD_PID"
    for ((i = 0; i < 300; i++)); do
        grep -q "^ready $SESSIONS$" "$WORK/$name.out" 2>/dev/null && return 0
        kill -0 "$HOLD_PID" 2>/dev/null || die "sessions ($name) failed: $(tail -3 "$WORK/$name.out")"
        sleep 0.1
    done
    die "sessions ($name): $SESSIONS sessions not logged in after 30 s"
}

release_sessions() {
    exec {HOLD_FD}>&-
    stop_pid "$HOLD_PID"
}

# per_session LABEL PID NAME PORT IQN LUN: one figure: the RSS growth of PID while SESSIONS idle
# sessions are logged in, per session (KiB)
per_session() {
    local label=$1 pid=$2 name=$3 port=$4 iqn=$5 lun=$6 before after
    before=$(vmrss_kib "$pid")
    hold_sessions "$name" "$port" "$iqn" "$lun"
    sleep 1
    after=$(vmrss_kib "$pid")
    release_sessions
    add_sample memory "$label" "" "" "" "" "" \
        "build/bench/sessions --portal 127.0.0.1:PORT --target $iqn --lun $lun --count $SESSIONS" \
        "$(awk -v a="$after" -v b="$before" -v n="$SESSIONS" 'BEGIN { printf "%.1f", (a - b) / n }')"
    log "$label: RSS $before KiB idle, $after KiB with $SESSIONS sessions"
}

# memory_round: every figure once, each in a fresh process
memory_round() {
    local port=$((ISCSI_PORT + 2)) pid
    start_serve serve-default "" "$port"
    pid=$SERVE_PID
    sleep 1
    add_sample memory "storstack serve (built-in default) idle RSS" "" "" "" "" "" \
        "build/storstack serve --socket S --iscsi-portal 127.0.0.1:PORT" "$(vmrss_kib "$pid")"
    per_session "storstack serve: RSS per idle iSCSI session" "$pid" hold-serve "$port" \
        "$SERVE_IQN" 0
    stop_all_servers

    start_serve serve-tib tib.ini "$((ISCSI_PORT + 4))"
    pid=$SERVE_PID
    "$STORSTACK" bench "$DEVICE" --server "$WORK/serve-tib.sock" --rw read --bs 1M --qd 8 \
        --size 1G --seconds 1 --prefill --json >"$WORK/tib.json" ||
        die "cannot write 1 GiB to the 1 TiB RAM disk"
    add_sample memory "storstack serve, 1 TiB sparse RAM disk, 1 GiB written: RSS" "" "" "" "" "" \
        "build/storstack serve --config tib.ini ...; build/storstack bench $DEVICE --server S --rw read --bs 1M --qd 8 --size 1G --seconds 1 --prefill" \
        "$(vmrss_kib "$pid")"
    stop_all_servers

    local img=$SHM_PREFIX-tgtd-idle.img
    truncate -s 1G "$img"
    start_tgtd "$((ISCSI_PORT + 3))" "$img"
    pid=${SERVER_PIDS[-1]}
    add_sample memory "tgtd idle RSS (one target, a 1 GiB LUN)" "" "" "" "" "" \
        "tgtd -f -C CTL --iscsi portal=127.0.0.1:PORT; tgtadm ... --bstype rdwr" "$(vmrss_kib "$pid")"
    per_session "tgtd: RSS per idle iSCSI session" "$pid" hold-tgtd "$((ISCSI_PORT + 3))" \
        "$TGTD_IQN" 1
    stop_all_servers
    rm -f "$img"
}

section_memory() {
    log "section memory: idle serve, 1 TiB sparse RAM disk, per iSCSI session"
    write_config "$WORK/tib.ini" ram Size=1T
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        log "memory round $r/$REPEAT"
        memory_round
    done
}
