# shellcheck shell=bash
# bench/iscsi.sh: libiscsi's iscsi-perf against `storstack serve` (a 1 GiB RAM LUN) and against
# tgtd (a 1 GiB LUN on a /dev/shm file, bstype rdwr), both filled with the same random data:
# 4 KiB random reads at 32 in flight, and 128 KiB sequential reads at 32 in flight. Both
# servers run for the whole section; each round measures each figure once, alternating them.
# Sourced by bench/run.sh.

readonly SERVE_IQN=iqn.2026-11.org.storstack:default
readonly TGTD_IQN=iqn.2026-11.org.storstack:bench-tgtd

# start_serve NAME CONFIG_OR_EMPTY PORT: `storstack serve` on its own socket and portal; sets
# SERVE_PID
start_serve() {
    local name=$1 cfg=$2 port=$3 i
    port_free "$port" || die "127.0.0.1:$port is taken: set BENCH_ISCSI_PORT to a free range"
    local -a cmd=("$STORSTACK" serve --socket "$WORK/$name.sock" --iscsi-portal "127.0.0.1:$port")
    [[ -n $cfg ]] && cmd+=(--config "$WORK/$cfg")
    "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
    SERVE_PID=$!
    register_pid "$SERVE_PID"
    for ((i = 0; i < 300; i++)); do
        grep -q "serving on" "$WORK/$name.log" 2>/dev/null && break
        kill -0 "$SERVE_PID" 2>/dev/null || die "storstack serve ($name) exited: $(tail -5 "$WORK/$name.log")"
        sleep 0.1
    done
    grep -q "serving on" "$WORK/$name.log" ||
        die "storstack serve ($name) did not start in 30 s: $(tail -3 "$WORK/$name.log")"
    wait_port "$port" "$SERVE_PID" "$name"
}

# start_tgtd PORT IMAGE: tgtd on 127.0.0.1:PORT, target TGTD_IQN with LUN 1 on IMAGE
start_tgtd() {
    local port=$1 img=$2 i ok=0
    port_free "$port" || die "127.0.0.1:$port is taken: set BENCH_ISCSI_PORT to a free range"
    local ctl=$((20000 + $$ % 10000))
    tgtd -f -C "$ctl" --iscsi portal="127.0.0.1:$port" >"$WORK/tgtd.log" 2>&1 &
    local pid=$!
    register_pid "$pid"
    TGTD_CTL=$ctl
    for ((i = 0; i < 50; i++)); do
        if tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$TGTD_IQN" 2>/dev/null; then
            ok=1
            break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    ((ok)) || die "tgtd did not start: $(tail -5 "$WORK/tgtd.log")"
    tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 --bstype rdwr \
        -b "$img" >/dev/null || die "tgtadm: cannot add LUN 1 on $img"
    tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL >/dev/null ||
        die "tgtadm: cannot bind the target"
    wait_port "$port" "$pid" tgtd
}

# iscsi_perf_figures LABEL RC FILE: checks one bounded iscsi-perf run's exit (0, or 124 when the
# timeout ended it) and sets PERF_IOPS and PERF_MIBS from its last "iops average" line (the whole
# run, login included, the same for every target)
iscsi_perf_figures() {
    local label=$1 rc=$2 out=$3 line
    ((rc == 0 || rc == 124)) || die "$label: iscsi-perf failed ($rc): $(tail -3 "$out")"
    line=$(tr '\r' '\n' <"$out" | grep 'iops average' | tail -1)
    [[ -n $line ]] || die "$label: iscsi-perf printed no figures: $(tail -3 "$out")"
    PERF_IOPS=$(sed -n 's/.*iops average \([0-9]*\) (\([0-9]*\) MB\/s).*/\1/p' <<<"$line")
    PERF_MIBS=$(sed -n 's/.*iops average \([0-9]*\) (\([0-9]*\) MB\/s).*/\2/p' <<<"$line")
    [[ -n $PERF_IOPS && -n $PERF_MIBS ]] || die "$label: cannot parse iscsi-perf's line: $line"
}

# iscsi_perf SECTION LABEL URL ARGS...: one bounded iscsi-perf run
iscsi_perf() {
    local section=$1 label=$2 url=$3 rc=0
    shift 3
    timeout -s INT "$((NET_RUNTIME + 1))" iscsi-perf "$@" "$url" >"$WORK/iscsi-perf.out" 2>&1 || rc=$?
    iscsi_perf_figures "$label" "$rc" "$WORK/iscsi-perf.out"
    add_sample "$section" "$label" "$PERF_IOPS" "$PERF_MIBS" "" "" "" \
        "timeout -s INT $((NET_RUNTIME + 1)) iscsi-perf $* ${url/127.0.0.1:[0-9]*\//127.0.0.1:PORT/}"
}

# iscsi_perf_pair SECTION LABEL URL ARGS...: two iscsi-perf at once (two sessions, two initiator
# names), each bounded as in iscsi_perf; the figure is the sum of theirs
iscsi_perf_pair() {
    local section=$1 label=$2 url=$3 k iops=0 mibs=0
    shift 3
    local -a pids=()
    for k in 1 2; do
        timeout -s INT "$((NET_RUNTIME + 1))" iscsi-perf -i "iqn.2026-11.org.storstack:bench-$k" "$@" \
            "$url" >"$WORK/iscsi-perf-$k.out" 2>&1 &
        pids+=($!)
    done
    for k in 1 2; do
        local rc=0
        wait "${pids[k - 1]}" || rc=$?
        iscsi_perf_figures "$label (iscsi-perf $k)" "$rc" "$WORK/iscsi-perf-$k.out"
        iops=$((iops + PERF_IOPS))
        mibs=$((mibs + PERF_MIBS))
    done
    add_sample "$section" "$label" "$iops" "$mibs" "" "" "" \
        "two at once: timeout -s INT $((NET_RUNTIME + 1)) iscsi-perf -i iqn.2026-11.org.storstack:bench-K $* ${url/127.0.0.1:[0-9]*\//127.0.0.1:PORT/}"
}

iscsi_round() {
    local who url
    for who in storstack tgtd; do
        url=$SERVE_URL
        [[ $who == tgtd ]] && url=$TGTD_URL
        iscsi_perf iscsi "iscsi-perf 4K randread QD32 → $who" "$url" -m 32 -b 8 -r
    done
    for who in storstack tgtd; do
        url=$SERVE_URL
        [[ $who == tgtd ]] && url=$TGTD_URL
        iscsi_perf_pair iscsi "2 × iscsi-perf 4K randread QD32 (two sessions) → $who" "$url" -m 32 -b 8 -r
    done
    for who in storstack tgtd; do
        url=$SERVE_URL
        [[ $who == tgtd ]] && url=$TGTD_URL
        iscsi_perf iscsi "iscsi-perf 128K seq read QD32 → $who" "$url" -m 32 -b 256
    done
}

section_iscsi() {
    log "section iSCSI: iscsi-perf against storstack serve and tgtd"
    [[ -f $WORK/ram.ini ]] || write_config "$WORK/ram.ini" ram Size=1G
    start_serve serve-iscsi ram.ini "$ISCSI_PORT"
    local serve_pid=$SERVE_PID
    # fill the RAM LUN with random data through the management socket (1 MiB writes)
    "$STORSTACK" bench "$DEVICE" --server "$WORK/serve-iscsi.sock" --rw read --bs 1M --qd 8 \
        --seconds 1 --prefill --json >/dev/null || die "cannot fill the served RAM disk"
    make_random_file "$SHM_PREFIX-tgtd.img"
    start_tgtd "$((ISCSI_PORT + 1))" "$SHM_PREFIX-tgtd.img"
    SERVE_URL="iscsi://127.0.0.1:$ISCSI_PORT/$SERVE_IQN/0"
    TGTD_URL="iscsi://127.0.0.1:$((ISCSI_PORT + 1))/$TGTD_IQN/1"
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        log "iSCSI round $r/$REPEAT"
        iscsi_round
    done
    log "profile: storstack serve under iscsi-perf 4K randread QD32 (perf)"
    timeout -s INT "$((NET_RUNTIME + 2))" iscsi-perf -m 32 -b 8 -r "$SERVE_URL" >/dev/null 2>&1 &
    local perf_load=$!
    sleep 1
    profile_perf_pid iscsi-serve "$serve_pid" "$NET_RUNTIME"
    wait "$perf_load" || true
    stop_all_servers
    rm -f "$SHM_PREFIX-tgtd.img"
}
