# shellcheck shell=bash
# bench/lib.sh: what every section of bench/run.sh shares: settings, logging, the store of
# results (every run of every figure, medians taken at the end), the runners for `storstack
# bench` and fio, and the registry of started servers that the EXIT trap stops.
# Sourced by bench/run.sh; not a program of its own.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
# RUNTIME: seconds per in-process figure (millions of I/Os each); NET_RUNTIME: per network
# figure (iscsi-perf prints whole seconds and logs in during the first).
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    RUNTIME=${BENCH_SECONDS:-1}
    NET_RUNTIME=${BENCH_NET_SECONDS:-2}
    REPEAT=1
else
    RUNTIME=${BENCH_SECONDS:-2}
    NET_RUNTIME=${BENCH_NET_SECONDS:-3}
    REPEAT=${BENCH_REPEAT:-3}
fi
readonly RUNTIME NET_RUNTIME REPEAT
readonly STORSTACK=${STORSTACK:-$ROOT/build/storstack}
readonly PLUGIN=${STORSTACK_NBDKIT:-$ROOT/build/storstack-nbdkit.so}
readonly DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
readonly PLOT=${BENCH_PLOT:-$ROOT/docs/benchmarks-scaling.png}
readonly BENCH_BIN=$ROOT/build/bench
readonly ISCSI_PORT=${BENCH_ISCSI_PORT:-3360}  # uses ISCSI_PORT .. ISCSI_PORT+4
readonly NBD_PORT=${BENCH_NBD_PORT:-10850}     # uses NBD_PORT .. NBD_PORT+2
readonly SHM_PREFIX=/dev/shm/storstack-bench-$$
readonly DEVICE=PhysicalDrive0
readonly DISK_BYTES=$((1024 * 1024 * 1024))    # every disk measured is 1 GiB
WORK=""                                        # private temp directory (bench_setup)
LOAD_START=""
T_START=$SECONDS

die() {
    echo "bench/run.sh: $*" >&2
    exit 1
}

log() {
    echo "bench [$(date -u +%H:%M:%S)]: $*" >&2
}

# ---- the store of results ----
# Every figure has a label; its runs are space-separated lists per field (empty field: the tool
# gives no such figure). SECTION_ROWS[section] lists its labels in order, separated by '|'.
declare -A R_IOPS=() R_MBS=() R_P50=() R_P99=() R_P999=() R_EXTRA=() CMD=() NOTE=()
declare -A SECTION_ROWS=()
declare -A SEEN=()

# add_sample SECTION LABEL IOPS MIBS P50 P99 P999 COMMAND [EXTRA]: one run of a figure.
add_sample() {
    local section=$1 label=$2
    if [[ -z ${SEEN[$label]:-} ]]; then
        SEEN[$label]=1
        SECTION_ROWS[$section]+="$label|"
        R_IOPS[$label]="" R_MBS[$label]="" R_P50[$label]="" R_P99[$label]="" R_P999[$label]=""
        R_EXTRA[$label]=""
    fi
    [[ -n $3 ]] && R_IOPS[$label]+=" $3"
    [[ -n $4 ]] && R_MBS[$label]+=" $4"
    [[ -n $5 ]] && R_P50[$label]+=" $5"
    [[ -n $6 ]] && R_P99[$label]+=" $6"
    [[ -n $7 ]] && R_P999[$label]+=" $7"
    [[ -n ${9:-} ]] && R_EXTRA[$label]+=" $9"
    CMD[$label]=$8
    log "$label: iops=${3:-–} MiB/s=${4:-–} ${9:+extra=$9}"
}

# median of the numbers given as arguments (the lower middle one for an even count); nothing
# for no numbers
median() {
    (($# > 0)) || return 0
    printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"
}

# med FIELD LABEL: the median of a figure's runs of one field (IOPS MBS P50 P99 P999 EXTRA)
med() {
    local -n arr="R_$1"
    # shellcheck disable=SC2086 # the runs are a space-separated list on purpose
    median ${arr[$2]:-}
}

# runs FIELD LABEL: the runs as a space-separated list, each rounded
runs() {
    local -n arr="R_$1"
    local v out=""
    for v in ${arr[$2]:-}; do out+="$(awk -v v="$v" 'BEGIN { printf "%.0f", v }') "; done
    echo "${out% }"
}

# ratio A B: A / B with two decimals, "n/a" when either is missing or B is 0
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}

# ---- servers: every process started here is registered and stopped by the EXIT trap ----
SERVER_PIDS=()
TGTD_CTL=""

register_pid() {
    SERVER_PIDS+=("$1")
}

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_tgtd() {
    if [[ -n $TGTD_CTL ]]; then
        # tgtd ignores SIGTERM while it has targets: ask it to shut down first
        tgtadm -C "$TGTD_CTL" --op delete --mode system >/dev/null 2>&1 || true
        TGTD_CTL=""
    fi
}

stop_all_servers() {
    local pid
    stop_tgtd
    for pid in "${SERVER_PIDS[@]}"; do
        stop_pid "$pid"
    done
    SERVER_PIDS=()
}

bench_cleanup() {
    trap - EXIT INT TERM
    stop_all_servers
    rm -f "$SHM_PREFIX"-*
    [[ -n $WORK ]] && rm -rf "$WORK"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT PID WHAT: until something accepts on 127.0.0.1:PORT (10 s), or PID died
wait_port() {
    local port=$1 pid=$2 what=$3 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || die "$what exited before listening on 127.0.0.1:$port (log: $WORK/$what.log): $(tail -5 "$WORK/$what.log" 2>/dev/null)"
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$what does not listen on 127.0.0.1:$port after 10 s (log: $WORK/$what.log)"
}

# vmrss_kib PID: resident set size of a process in KiB
vmrss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# ---- configurations ----
# write_config FILE BACKEND [KEY=VALUE...]: one virtual adapter with one disk (the built-in
# default's layout, api/local.c) on the given backend; given explicitly so that a `storstack
# serve` listening on the default socket cannot be measured instead of an in-process stack.
write_config() {
    local file=$1 backend=$2 kv
    shift 2
    {
        echo '[Enum\Root\VMINIPORT\0000]'
        echo 'HardwareID = multi:ROOT\VMINIPORT'
        echo 'DeviceDesc = storstack virtual storage adapter'
        echo '[Enum\Root\VMINIPORT\0000\Device Parameters\Target0\Lun0]'
        echo 'Type = disk'
        echo "Backend = $backend"
        for kv in "$@"; do
            echo "${kv%%=*} = ${kv#*=}"
        done
    } >"$file"
}

# ---- runners ----
# ss_bench SECTION LABEL CONFIG_NAME SECONDS ARGS...: one `storstack bench` run in process on
# $WORK/CONFIG_NAME (ARGS: --rw, --qd, --threads, --prefill ...)
ss_bench() {
    local section=$1 label=$2 cfg=$3 secs=$4 out
    shift 4
    local -a cmd=("$STORSTACK" bench "$DEVICE" --config "$WORK/$cfg" --bs 4K "$@"
        --seconds "$secs" --json)
    out=$("${cmd[@]}") || die "$label: storstack bench failed: ${cmd[*]}"
    [[ $(jq -r '.remote' <<<"$out") == false ]] || die "$label: measured a remote stack"
    [[ $(jq -r '.errors' <<<"$out") == 0 ]] || die "$label: I/O errors: $out"
    add_sample "$section" "$label" "$(jq -r '.iops' <<<"$out")" "$(jq -r '.mib_per_s' <<<"$out")" \
        "$(jq -r '.lat_us.p50' <<<"$out")" "$(jq -r '.lat_us.p99' <<<"$out")" \
        "$(jq -r '.lat_us["p99.9"]' <<<"$out")" \
        "build/storstack bench $DEVICE --config $cfg --bs 4K $* --seconds $secs --json"
}

# The options shared by every timed fio job.
readonly FIO_COMMON=(--time_based --norandommap --randrepeat=0 --group_reporting
    --output-format=json)

# fio_run SECTION LABEL DIRECTION(read|write) SECONDS FIO_ARGS...: one timed fio run
fio_run() {
    local section=$1 label=$2 dir=$3 secs=$4 json=$WORK/fio.json q
    shift 4
    local -a cmd=(fio "$@" "${FIO_COMMON[@]}" "--runtime=$secs")
    "${cmd[@]}" --output="$json" >"$WORK/fio.log" 2>&1 ||
        die "$label: fio failed: ${cmd[*]}: $(tail -5 "$WORK/fio.log")"
    [[ $(jq -r '.jobs[0].error' "$json") == 0 ]] || die "$label: fio job error: ${cmd[*]}"
    q=".jobs[0].$dir"
    local shown="${cmd[*]}"
    shown=${shown//$SHM_PREFIX/\/dev\/shm\/storstack-bench}
    shown=${shown//$WORK\//}
    add_sample "$section" "$label" "$(jq -r "$q.iops" "$json")" \
        "$(jq -r "$q.bw_bytes / 1048576" "$json")" \
        "$(jq -r "$q.clat_ns.percentile[\"50.000000\"] / 1000" "$json")" \
        "$(jq -r "$q.clat_ns.percentile[\"99.000000\"] / 1000" "$json")" \
        "$(jq -r "$q.clat_ns.percentile[\"99.900000\"] / 1000" "$json")" "$shown"
}

# dir_of RW: fio's JSON direction of a --rw
dir_of() {
    case $1 in
    randread | read) echo read ;;
    *) echo write ;;
    esac
}

# make_random_file PATH: a 1 GiB file of random data (fio's refill_buffers: fresh random data
# per block, so nothing compresses or deduplicates)
make_random_file() {
    fio --name=prefill --filename="$1" --size="$DISK_BYTES" --rw=write --bs=1M --ioengine=psync \
        --refill_buffers --output=/dev/null >"$WORK/prefill.log" 2>&1 ||
        die "cannot write $1: $(tail -3 "$WORK/prefill.log")"
}
