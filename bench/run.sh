#!/usr/bin/env bash
# bench/run.sh: storstack's 4 KiB random I/O on its default RAM disk, side by side with the
# physical limit (bench/memlimit.c), fio's io_uring engine on a tmpfs file and fio's null engine,
# all in one run on one machine; writes docs/benchmarks.md (keeping its hand-written analysis
# between the <!-- analysis --> markers).
#
# Usage (from anywhere; paths are the repository's):  bench/run.sh
#   BENCH_SECONDS  seconds per measurement (default 5); each figure is the median of 3 runs
#   STORSTACK      the storstack binary (default build/storstack; it is not built here)
#   BENCH_DOC      where to write the report (default docs/benchmarks.md)
# Needs: fio (scripts/install-deps.sh bench), jq, cc.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly RUNTIME=${BENCH_SECONDS:-5}
readonly REPEAT=3
readonly STORSTACK=${STORSTACK:-$ROOT/build/storstack}
readonly DOC=${BENCH_DOC:-$ROOT/docs/benchmarks.md}
readonly MEMLIMIT=$ROOT/build/bench/memlimit
readonly SHM_FILE=/dev/shm/storstack-bench-$$.img
readonly DEVICE=PhysicalDrive0
WORK=""
LOAD_START=""

# Results, keyed by a row label: IOPS, latency percentiles in microseconds, the command.
declare -A IOPS=() P50=() P99=() P999=() CMD=()
ROWS=()

die() {
    echo "bench/run.sh: $*" >&2
    exit 1
}

log() {
    echo "bench: $*" >&2
}

cleanup() {
    rm -f "$SHM_FILE"
    if [[ -n "$WORK" ]]; then
        rm -rf "$WORK"
    fi
}

check_prerequisites() {
    [[ "$RUNTIME" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a whole number of seconds above 0, got '$RUNTIME'"
    [[ -x "$STORSTACK" ]] || die "no storstack binary at $STORSTACK: run 'make' first (or set STORSTACK=path)"
    command -v fio >/dev/null || die "fio is missing: run 'scripts/install-deps.sh bench' (or 'make bench')"
    command -v jq >/dev/null || die "jq is missing (it parses the JSON of fio and storstack): apt-get install jq"
    command -v cc >/dev/null || die "cc is missing: run 'scripts/install-deps.sh build'"
    [[ -d /dev/shm && -w /dev/shm ]] || die "/dev/shm is not a writable directory (fio's file goes there)"
    local avail_kib
    avail_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
    ((avail_kib > 4 * 1024 * 1024)) || die "need about 4 GiB of free memory (RAM disk, tmpfs file, memlimit's buffer); $((avail_kib / 1024)) MiB available"
}

build_memlimit() {
    mkdir -p "$(dirname "$MEMLIMIT")"
    cc -O2 -std=c11 -Wall -Wextra -pthread -o "$MEMLIMIT" "$ROOT/bench/memlimit.c" ||
        die "cannot compile bench/memlimit.c"
}

# The median of the numbers given as arguments (an odd count).
median() {
    printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"
}

# record LABEL "IOPS..." "P50..." "P99..." "P99.9..." COMMAND: stores the medians of the runs.
record() {
    local label=$1 cmd=$6
    local -a runs_iops runs_p50 runs_p99 runs_p999
    read -r -a runs_iops <<<"$2"
    read -r -a runs_p50 <<<"$3"
    read -r -a runs_p99 <<<"$4"
    read -r -a runs_p999 <<<"$5"
    IOPS[$label]=$(median "${runs_iops[@]}")
    P50[$label]=$(median "${runs_p50[@]}")
    P99[$label]=$(median "${runs_p99[@]}")
    P999[$label]=$(median "${runs_p999[@]}")
    CMD[$label]=$cmd
    ROWS+=("$label")
    log "$label: ${IOPS[$label]} IOPS (runs: ${runs_iops[*]}), p50 ${P50[$label]} us, p99 ${P99[$label]} us"
}

# The stack the built-in default boots (api/local.c), given explicitly so that a `storstack
# serve` listening on the default socket cannot be measured instead of an in-process stack.
write_default_config() {
    cat >"$WORK/default.ini" <<'EOF'
[Enum\Root\VMINIPORT\0000]
HardwareID = multi:ROOT\VMINIPORT
DeviceDesc = storstack virtual storage adapter
[Enum\Root\VMINIPORT\0000\Device Parameters\Target0\Lun0]
Type = disk
Backend = ram
Size = 1G
EOF
}

# bench_storstack RW QD THREADS
bench_storstack() {
    local rw=$1 qd=$2 threads=$3
    local label="storstack $rw QD$qd ${threads}T"
    local -a cmd=("$STORSTACK" bench "$DEVICE" --config "$WORK/default.ini" --rw "$rw" --bs 4K
        --qd "$qd" --threads "$threads" --seconds "$RUNTIME" --prefill --json)
    local iops="" p50="" p99="" p999="" out run
    for ((run = 1; run <= REPEAT; run++)); do
        out=$("${cmd[@]}") || die "$label: storstack bench failed: ${cmd[*]}"
        [[ $(jq -r '.remote' <<<"$out") == false ]] || die "$label: measured a remote stack"
        [[ $(jq -r '.errors' <<<"$out") == 0 ]] || die "$label: I/O errors: $out"
        iops+=" $(jq -r '.iops' <<<"$out")"
        p50+=" $(jq -r '.lat_us.p50' <<<"$out")"
        p99+=" $(jq -r '.lat_us.p99' <<<"$out")"
        p999+=" $(jq -r '.lat_us["p99.9"]' <<<"$out")"
    done
    record "$label" "$iops" "$p50" "$p99" "$p999" \
        "build/storstack bench $DEVICE --config default.ini --rw $rw --bs 4K --qd $qd --threads $threads --seconds $RUNTIME --prefill --json"
}

# The fio options shared by every timed fio job.
fio_common=(--bs=4k --numjobs=1 --time_based --norandommap --randrepeat=0 --group_reporting
    --output-format=json)

# run_fio LABEL DIRECTION(read|write) FIO_ARGS...: REPEAT runs, medians of IOPS and clat.
run_fio() {
    local label=$1 dir=$2
    shift 2
    local -a cmd=(fio "$@" "${fio_common[@]}" "--runtime=$RUNTIME")
    local iops="" p50="" p99="" p999="" out run q
    for ((run = 1; run <= REPEAT; run++)); do
        out=$("${cmd[@]}") || die "$label: fio failed: ${cmd[*]}"
        [[ $(jq -r ".jobs[0].error" <<<"$out") == 0 ]] || die "$label: fio job error: ${cmd[*]}"
        q=".jobs[0].$dir"
        iops+=" $(jq -r "$q.iops" <<<"$out")"
        p50+=" $(jq -r "$q.clat_ns.percentile[\"50.000000\"] / 1000" <<<"$out")"
        p99+=" $(jq -r "$q.clat_ns.percentile[\"99.000000\"] / 1000" <<<"$out")"
        p999+=" $(jq -r "$q.clat_ns.percentile[\"99.900000\"] / 1000" <<<"$out")"
    done
    local shown="${cmd[*]}"
    record "$label" "$iops" "$p50" "$p99" "$p999" "${shown//$SHM_FILE//dev/shm/storstack-bench.img}"
}

prefill_shm_file() {
    log "prefilling $SHM_FILE (1 GiB of random data)"
    fio --name=prefill --filename="$SHM_FILE" --size=1G --rw=write --bs=1M --ioengine=psync \
        --refill_buffers --output=/dev/null || die "cannot write $SHM_FILE"
}

# bench_fio_uring RW QD
bench_fio_uring() {
    local rw=$1 qd=$2 dir=read
    if [[ $rw == randwrite ]]; then
        dir="write"
    fi
    run_fio "fio io_uring $rw QD$qd 1T" "$dir" --name="uring-$rw-$qd" --filename="$SHM_FILE" \
        --size=1G --ioengine=io_uring --direct=0 --rw="$rw" --iodepth="$qd"
}

bench_fio_null() {
    run_fio "fio null randread QD32 1T" read --name=null --ioengine=null --size=1G \
        --rw=randread --iodepth=32
}

# bench_memlimit THREADS
bench_memlimit() {
    local threads=$1 out
    local label="memlimit ${threads}T"
    out=$("$MEMLIMIT" --seconds "$RUNTIME" --threads "$threads" --repeat "$REPEAT") ||
        die "$label: memlimit failed"
    # memlimit prints its own median of REPEAT runs; it has no latency figures
    IOPS[$label]=$(jq -r '.copies_per_s' <<<"$out")
    P50[$label]="" P99[$label]="" P999[$label]=""
    CMD[$label]="build/bench/memlimit --seconds $RUNTIME --threads $threads --repeat $REPEAT"
    ROWS+=("$label")
    log "$label: ${IOPS[$label]} copies/s (runs: $(jq -r '.runs | map(floor) | join(" ")' <<<"$out"))"
}

# ratio A B: A / B with two decimals
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

fmt_int() {
    awk -v v="$1" 'BEGIN { printf "%.0f", v }'
}

fmt_us() {
    if [[ -z "$1" ]]; then
        echo "–"
    else
        awk -v v="$1" 'BEGIN { printf "%.2f", v }'
    fi
}

# The hand-written analysis of the previous report, or a placeholder for one.
previous_analysis() {
    if [[ -f "$DOC" ]] && grep -q '^<!-- analysis -->' "$DOC"; then
        sed -n '/^<!-- analysis -->/,/^<!-- \/analysis -->/p' "$DOC"
    else
        printf '%s\n' '<!-- analysis -->' '## Analysis' '' \
            '(hand-written; bench/run.sh keeps what is between these markers)' \
            '<!-- /analysis -->'
    fi
}

machine_line() {
    local model mem
    model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "$(nproc) CPUs ($model), $mem RAM, Linux $(uname -r)"
}

write_report() {
    local analysis tmp label goal_ratio goal
    analysis=$(previous_analysis)
    tmp=$(mktemp "$DOC.XXXXXX")
    local ss_qd32="storstack randread QD32 1T" mem1="memlimit 1T"
    goal_ratio=$(ratio "${IOPS[$ss_qd32]}" "${IOPS[$mem1]}")
    if awk -v r="$goal_ratio" 'BEGIN { exit !(r >= 0.5) }'; then goal=PASS; else goal=MISS; fi
    {
        echo "# Benchmarks"
        echo
        echo "Generated by \`bench/run.sh\` (\`make bench\`); do not edit by hand except between the"
        echo "analysis markers at the end, which reruns keep."
        echo
        echo "- Machine: $(machine_line)"
        echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), storstack $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo "- Load average (1 min) at start / end: $LOAD_START / $(cut -d' ' -f1 /proc/loadavg)"
        echo "  (other processes share this machine; figures move with them)"
        echo "- Each figure: ${RUNTIME} s per run, median of $REPEAT runs (each column separately)."
        echo "  Latency: storstack from submit to completion callback; fio its completion latency"
        echo "  (clat); memlimit has none. MiB/s = IOPS × 4 KiB."
        echo
        echo "## Goal of this slice"
        echo
        echo "4 KiB random reads at QD 32 on one core reach at least half of the physical limit:"
        echo "**$goal** — storstack randread QD32 1 thread $(fmt_int "${IOPS[$ss_qd32]}") IOPS ÷"
        echo "memlimit 1 thread $(fmt_int "${IOPS[$mem1]}") copies/s = **$goal_ratio** (goal ≥ 0.50)."
        echo
        echo "## Results (4 KiB)"
        echo
        echo "| what | IOPS | MiB/s | p50 µs | p99 µs | p99.9 µs |"
        echo "|------|-----:|------:|-------:|-------:|---------:|"
        for label in "${ROWS[@]}"; do
            printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "$(fmt_int "${IOPS[$label]}")" \
                "$(awk -v v="${IOPS[$label]}" 'BEGIN { printf "%.0f", v * 4096 / 1048576 }')" \
                "$(fmt_us "${P50[$label]}")" "$(fmt_us "${P99[$label]}")" \
                "$(fmt_us "${P999[$label]}")"
        done
        echo
        echo "## Ratios (IOPS)"
        echo
        echo "| ratio | value |"
        echo "|-------|------:|"
        echo "| storstack randread QD32 1T ÷ memlimit 1T | $goal_ratio |"
        echo "| storstack randread QD32 2T ÷ memlimit 2T | $(ratio "${IOPS[storstack randread QD32 2T]}" "${IOPS[memlimit 2T]}") |"
        local rw qd
        for rw in randread randwrite; do
            for qd in 1 32; do
                echo "| storstack $rw QD$qd 1T ÷ fio io_uring $rw QD$qd | $(ratio "${IOPS[storstack $rw QD$qd 1T]}" "${IOPS[fio io_uring $rw QD$qd 1T]}") |"
            done
        done
        echo "| storstack randread QD32 1T ÷ fio null randread QD32 | $(ratio "${IOPS[$ss_qd32]}" "${IOPS[fio null randread QD32 1T]}") |"
        echo
        echo "## Commands"
        echo
        echo "\`default.ini\` is the built-in default stack (api/local.c: one virtual adapter, a 1 GiB"
        echo "sparse RAM disk) written to a file, so that a \`storstack serve\` on the default socket"
        echo "cannot be measured instead of the in-process stack. \`--prefill\` writes the whole disk"
        echo "with random data before the clock starts. fio's file is prefilled once with"
        echo "\`fio --name=prefill --filename=/dev/shm/storstack-bench.img --size=1G --rw=write --bs=1M --ioengine=psync --refill_buffers\`."
        echo
        echo '```'
        for label in "${ROWS[@]}"; do
            echo "# $label"
            echo "${CMD[$label]}"
        done
        echo '```'
        echo
        echo "$analysis"
    } >"$tmp"
    mv "$tmp" "$DOC"
    log "wrote ${DOC#"$ROOT"/}: goal $goal ($goal_ratio)"
}

main() {
    check_prerequisites
    LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
    WORK=$(mktemp -d)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    write_default_config
    build_memlimit

    local rw qd
    for rw in randread randwrite; do
        for qd in 1 32; do
            bench_storstack "$rw" "$qd" 1
        done
        bench_storstack "$rw" 32 2
    done

    prefill_shm_file
    for rw in randread randwrite; do
        for qd in 1 32; do
            bench_fio_uring "$rw" "$qd"
        done
    done
    rm -f "$SHM_FILE"
    bench_fio_null

    bench_memlimit 1
    bench_memlimit 2

    write_report
}

main "$@"
