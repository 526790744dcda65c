# shellcheck shell=bash
# bench/nbd.sh: NBD servers side by side: nbdkit with storstack's plugin (a 1 GiB RAM disk
# booted in the nbdkit process), `nbdkit memory 1G`, and qemu-nbd on a 1 GiB /dev/shm file; all
# three hold the same random data. fio's nbd engine (4 KiB randread and randwrite, QD 32, one
# connection) and `nbdcopy nbd://... null:` (the whole 1 GiB, nbdcopy's defaults: up to 4
# connections when the server offers multi-conn, 64 requests of 256 KiB in flight).
# Sourced by bench/run.sh.

readonly NBD_SERVERS=("nbdkit+storstack" "nbdkit memory" "qemu-nbd")

# start_nbd NAME PORT CMD...: a server in the foreground of a background job
start_nbd() {
    local name=$1 port=$2
    shift 2
    port_free "$port" || die "127.0.0.1:$port is taken: set BENCH_NBD_PORT to a free range"
    "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    register_pid "$pid"
    wait_port "$port" "$pid" "$name"
    STARTED_PID=$pid
}

nbd_port_of() {
    case $1 in
    "nbdkit+storstack") echo "$NBD_PORT" ;;
    "nbdkit memory") echo "$((NBD_PORT + 1))" ;;
    qemu-nbd) echo "$((NBD_PORT + 2))" ;;
    esac
}

# nbdcopy_run LABEL URI: one copy of the whole export to null:, timed
nbdcopy_run() {
    local label=$1 uri=$2 t0 t1 secs
    t0=$(date +%s%N)
    nbdcopy "$uri" null: 2>"$WORK/nbdcopy.log" || die "$label: nbdcopy failed: $(tail -3 "$WORK/nbdcopy.log")"
    t1=$(date +%s%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
    add_sample nbd "$label" "" "$(awk -v s="$secs" -v n="$DISK_BYTES" 'BEGIN { printf "%.1f", n / 1048576 / s }')" \
        "" "" "" "nbdcopy nbd://127.0.0.1:PORT null:" "$secs"
}

nbd_round() {
    local who port rw
    for rw in randread randwrite; do
        for who in "${NBD_SERVERS[@]}"; do
            port=$(nbd_port_of "$who")
            fio_run nbd "fio nbd $rw QD32 → $who" "$(dir_of "$rw")" "$NET_RUNTIME" --name=nbd \
                --ioengine=nbd --uri="nbd://127.0.0.1:$port" --size=1G --bs=4k --rw="$rw" \
                --iodepth=32 --numjobs=1
        done
    done
    for who in "${NBD_SERVERS[@]}"; do
        nbdcopy_run "nbdcopy 1 GiB → null: from $who" "nbd://127.0.0.1:$(nbd_port_of "$who")"
    done
}

section_nbd() {
    log "section NBD: nbdkit+storstack plugin, nbdkit memory, qemu-nbd"
    [[ -f $WORK/ram.ini ]] || write_config "$WORK/ram.ini" ram Size=1G
    local img=$SHM_PREFIX-qemu.img
    make_random_file "$img"
    start_nbd "nbdkit-plugin" "$(nbd_port_of "nbdkit+storstack")" nbdkit --exit-with-parent -f \
        -i 127.0.0.1 -p "$(nbd_port_of "nbdkit+storstack")" "$PLUGIN" config="$WORK/ram.ini"
    local plugin_pid=$STARTED_PID
    start_nbd "nbdkit-memory" "$(nbd_port_of "nbdkit memory")" nbdkit --exit-with-parent -f \
        -i 127.0.0.1 -p "$(nbd_port_of "nbdkit memory")" memory 1G
    start_nbd "qemu-nbd" "$(nbd_port_of qemu-nbd)" qemu-nbd -b 127.0.0.1 \
        -p "$(nbd_port_of qemu-nbd)" -f raw -t --shared=8 --cache=writeback --aio=threads "$img"
    # the same random data in the two RAM-backed exports as in qemu-nbd's file
    local who
    for who in "nbdkit+storstack" "nbdkit memory"; do
        nbdcopy "$img" "nbd://127.0.0.1:$(nbd_port_of "$who")" 2>"$WORK/nbdcopy.log" ||
            die "cannot fill the $who export: $(tail -3 "$WORK/nbdcopy.log")"
    done
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        log "NBD round $r/$REPEAT"
        nbd_round
    done
    log "profile: nbdkit + storstack plugin under fio nbd randread QD32 (perf)"
    fio --name=nbd --ioengine=nbd --uri="nbd://127.0.0.1:$(nbd_port_of "nbdkit+storstack")" \
        --size=1G --bs=4k --rw=randread --iodepth=32 --time_based --runtime="$((NET_RUNTIME + 2))" \
        --norandommap --randrepeat=0 --output=/dev/null >/dev/null 2>&1 &
    local perf_load=$!
    sleep 1
    profile_perf_pid nbd-plugin "$plugin_pid" "$NET_RUNTIME"
    wait "$perf_load" || true
    stop_all_servers
    rm -f "$img"
}
