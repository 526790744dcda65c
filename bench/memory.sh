# shellcheck shell=bash
# bench/memory.sh: resident memory (VmRSS of /proc/PID/status):
#  - the default `storstack serve` (built-in default stack: a 1 GiB sparse RAM disk, the iSCSI
#    target, the management socket) at idle, once its stack is up;
#  - a 1 TiB sparse RAM disk served by `storstack serve` after 1 GiB written to it through the
#    management socket (`storstack bench --server ... --size 1G --prefill`: sequential 1 MiB
#    writes of random data, 8 in flight, then 1 s of reads of that range);
#  - per idle iSCSI session: the RSS growth of the default serve while bench/sessions holds 100
#    logged-in sessions, divided by 100; beside tgtd measured the same way.
# Each figure: the median of REPEAT samples. Sourced by bench/run.sh.

readonly SESSIONS=100

# rss_samples PID: REPEAT samples of VmRSS (KiB) 0.3 s apart
rss_samples() {
    local r out=""
    for ((r = 1; r <= REPEAT; r++)); do
        out+="$(vmrss_kib "$1") "
        sleep 0.3
    done
    echo "$out"
}

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

# kib_samples SECTION LABEL COMMAND KIB...: a memory figure (stored in EXTRA, KiB)
kib_samples() {
    local section=$1 label=$2 cmd=$3 v
    shift 3
    for v in "$@"; do
        add_sample "$section" "$label" "" "" "" "" "" "$cmd" "$v"
    done
}

# per_session SECTION LABEL PID NAME PORT IQN LUN
per_session() {
    local section=$1 label=$2 pid=$3 name=$4 port=$5 iqn=$6 lun=$7 before after
    local -a b a
    read -r -a b <<<"$(rss_samples "$pid")"
    before=$(median "${b[@]}")
    hold_sessions "$name" "$port" "$iqn" "$lun"
    sleep 1
    read -r -a a <<<"$(rss_samples "$pid")"
    release_sessions
    local v
    for v in "${a[@]}"; do
        add_sample "$section" "$label" "" "" "" "" "" \
            "build/bench/sessions --portal 127.0.0.1:PORT --target $iqn --lun $lun --count $SESSIONS" \
            "$(awk -v a="$v" -v b="$before" -v n="$SESSIONS" 'BEGIN { printf "%.1f", (a - b) / n }')"
    done
    log "$label: RSS $before KiB idle, $(median "${a[@]}") KiB with $SESSIONS sessions"
}

section_memory() {
    log "section memory: idle serve, 1 TiB sparse RAM disk, per iSCSI session"
    local port=$((ISCSI_PORT + 2))
    start_serve serve-default "" "$port"
    local pid=$SERVE_PID
    sleep 1
    # shellcheck disable=SC2046 # the samples are words on purpose
    kib_samples memory "storstack serve (built-in default) idle RSS" \
        "build/storstack serve --socket S --iscsi-portal 127.0.0.1:PORT" $(rss_samples "$pid")
    per_session memory "storstack serve: RSS per idle iSCSI session" "$pid" hold-serve "$port" \
        "$SERVE_IQN" 0
    stop_all_servers

    write_config "$WORK/tib.ini" ram Size=1T
    start_serve serve-tib tib.ini "$port"
    pid=$SERVE_PID
    "$STORSTACK" bench "$DEVICE" --server "$WORK/serve-tib.sock" --rw read --bs 1M --qd 8 \
        --size 1G --seconds 1 --prefill --json >"$WORK/tib.json" ||
        die "cannot write 1 GiB to the 1 TiB RAM disk"
    # shellcheck disable=SC2046
    kib_samples memory "storstack serve, 1 TiB sparse RAM disk, 1 GiB written: RSS" \
        "build/storstack serve --config tib.ini ...; build/storstack bench $DEVICE --server S --rw read --bs 1M --qd 8 --size 1G --seconds 1 --prefill" \
        $(rss_samples "$pid")
    stop_all_servers

    local img=$SHM_PREFIX-tgtd-idle.img
    truncate -s 1G "$img"
    start_tgtd "$((ISCSI_PORT + 3))" "$img"
    local tpid=${SERVER_PIDS[-1]}
    per_session memory "tgtd: RSS per idle iSCSI session" "$tpid" hold-tgtd "$((ISCSI_PORT + 3))" \
        "$TGTD_IQN" 1
    stop_all_servers
    rm -f "$img"
}
