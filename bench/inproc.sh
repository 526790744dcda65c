# shellcheck shell=bash
# bench/inproc.sh: the in-process sections of bench/run.sh (sourced).
#  - "ram": `storstack bench` on a 1 GiB RAM disk through the whole stack (class -> port ->
#    miniport -> device -> backend) beside fio's io_uring engine on a 1 GiB /dev/shm file,
#    4 KiB random read/write, QD 1 and 32, 1 and 2 threads; the physical limit (memlimit).
#  - "null": the same on the null device (Backend = null: completes inline, moves no data)
#    beside fio's null engine: the per-I/O cost of the stack and of fio alone, as ns/IO.
#  - "instr": instructions per I/O under valgrind --tool=callgrind, storstack's null device
#    beside fio's null engine.
# Every round runs each figure once, so a figure and its peer alternate in time; the report
# takes the median of the rounds.

inproc_round() {
    local rw qd t dir
    for rw in randread randwrite; do
        dir=$(dir_of "$rw")
        for qd in 1 32; do
            for t in 1 2; do
                ss_bench ram "storstack ram $rw QD$qd ${t}T" ram.ini "$RUNTIME" --rw "$rw" \
                    --qd "$qd" --threads "$t" --prefill
                fio_run ram "fio io_uring /dev/shm $rw QD$qd ${t}T" "$dir" "$RUNTIME" \
                    --name="uring-$rw" --filename="$SHM_PREFIX-shm.img" --size=1G --bs=4k \
                    --ioengine=io_uring --direct=0 --rw="$rw" --iodepth="$qd" --numjobs="$t"
                ss_bench null "storstack null $rw QD$qd ${t}T" null.ini "$RUNTIME" --rw "$rw" \
                    --qd "$qd" --threads "$t"
                fio_run null "fio null $rw QD$qd ${t}T" "$dir" "$RUNTIME" --name="null-$rw" \
                    --ioengine=null --size=1G --bs=4k --rw="$rw" --iodepth="$qd" --numjobs="$t" \
                    --thread
            done
        done
    done
    for t in 1 2; do
        memlimit_run "$t"
    done
    memlimit_run 1 --hugepages
}

# memlimit_run THREADS: one run of the physical limit (random 4 KiB memcpy out of a buffer the
# size of the disk)
# (with --hugepages: the buffer in 2 MiB pages, as the RAM backend maps its full regions)
memlimit_run() {
    local t=$1 huge=${2:-} out label="memlimit (random 4 KiB memcpy, 1 GiB buffer) ${1}T"
    [[ -n $huge ]] && label="memlimit (random 4 KiB memcpy, 1 GiB buffer, huge pages) ${1}T"
    # shellcheck disable=SC2086 # $huge is one word or none
    out=$("$BENCH_BIN/memlimit" --seconds "$RUNTIME" --threads "$t" --repeat 1 $huge) ||
        die "$label: memlimit failed"
    add_sample ram "$label" "$(jq -r '.copies_per_s' <<<"$out")" \
        "$(jq -r '.copies_per_s * 4096 / 1048576' <<<"$out")" "" "" "" \
        "build/bench/memlimit --seconds $RUNTIME --threads $t --repeat 1${huge:+ $huge}"
}

# callgrind_ir LOG CMD...: runs CMD under callgrind; prints the instructions it executed
# (CG_KEEP: where to keep callgrind's profile, else none is kept)
callgrind_ir() {
    local log=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="${CG_KEEP:-/dev/null}" "$@" >"$WORK/cg.out" \
        2>"$log" ||
        die "callgrind failed: $*: $(tail -5 "$log")"
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$log"
}

# instr_storstack RW QD: instructions per I/O of the null device, from one callgrind run of
# `storstack bench` (it has no fixed I/O count; callgrind's counts do not depend on how many
# I/Os a run does): the inclusive instructions of the submitting thread's function
# (tools/bench.c bench_thread: submission, the stack, and completions that run inline) divided
# by the I/Os of its JSON; and, as an upper bound, every instruction of the process (boot,
# teardown and any other thread included) divided by the same I/Os.
instr_storstack() {
    local rw=$1 qd=$2 ir n incl secs=2
    local cg=$WORK/cg-null-qd$qd.out
    local -a cmd=("$STORSTACK" bench "$DEVICE" --config "$WORK/null.ini" --rw "$rw" --bs 4K
        --qd "$qd" --seconds "$secs" --json)
    ir=$(CG_KEEP=$cg callgrind_ir "$WORK/cg.log" "${cmd[@]}")
    n=$(jq -r '.ios' "$WORK/cg.out")
    incl=$(callgrind_annotate --inclusive=yes "$cg" 2>/dev/null |
        sed -n 's/^ *\([0-9,]*\) .*:bench_thread \[.*$/\1/p' | head -1 | tr -d ,)
    [[ $ir =~ ^[0-9]+$ && $incl =~ ^[0-9]+$ ]] || die "storstack null $rw QD$qd: no instruction counts from callgrind ($ir, $incl)"
    [[ $n =~ ^[0-9]+$ ]] && ((n > 0)) || die "storstack null $rw QD$qd: no I/Os under callgrind"
    local shown="valgrind --tool=callgrind build/storstack bench $DEVICE --config null.ini --rw $rw --bs 4K --qd $qd --seconds $secs --json"
    add_sample instr "storstack null $rw QD$qd 1T: submitting thread (bench_thread inclusive)" \
        "" "" "" "" "" "$shown" "$(awk -v a="$incl" -v n="$n" 'BEGIN { printf "%.0f", a / n }')"
    add_sample instr "storstack null $rw QD$qd 1T: whole process incl. boot" "" "" "" "" "" \
        "$shown" "$(awk -v a="$ir" -v n="$n" 'BEGIN { printf "%.0f", a / n }')"
}

# instr_record LABEL IR1 IOS1 IR2 IOS2 COMMAND: one instructions/IO figure from a short and a
# long run: (IR2 - IR1) / (IOS2 - IOS1)
instr_record() {
    local label=$1 ir1=$2 n1=$3 ir2=$4 n2=$5
    [[ $ir1 =~ ^[0-9]+$ && $ir2 =~ ^[0-9]+$ ]] || die "$label: callgrind printed no instruction count"
    ((n2 > n1)) || die "$label: the long run did no more I/O ($n2) than the short one ($n1)"
    add_sample instr "$label" "" "" "" "" "" "$6" \
        "$(awk -v a="$ir1" -v b="$ir2" -v m="$n1" -v n="$n2" 'BEGIN { printf "%.0f", (b - a) / (n - m) }')"
}

# instr_fio RW QD: fio's null engine, which has a fixed I/O count (--number_ios) but no symbols
# (Debian strips it): two runs, Δinstructions ÷ ΔI/Os of the whole process (fio's startup and
# teardown cancel out; its helper thread is counted); and the long run's instructions ÷ I/Os,
# the upper bound like storstack's "whole process" row.
instr_fio() {
    local rw=$1 qd=$2 ir1 ir2 n1 n2 few=50000 many=150000 dir
    dir=$(dir_of "$rw")
    local label="fio null $rw QD$qd 1T: Δ of two runs"
    local -a args=(fio --name=null --ioengine=null --size=16G --bs=4k --rw="$rw" --iodepth="$qd"
        --thread --norandommap --randrepeat=0 --output-format=json)
    ir1=$(callgrind_ir "$WORK/cg1.log" "${args[@]}" --number_ios=$few)
    n1=$(jq -r ".jobs[0].$dir.total_ios" "$WORK/cg.out")
    ir2=$(callgrind_ir "$WORK/cg2.log" "${args[@]}" --number_ios=$many)
    n2=$(jq -r ".jobs[0].$dir.total_ios" "$WORK/cg.out")
    instr_record "$label" "$ir1" "$n1" "$ir2" "$n2" \
        "valgrind --tool=callgrind ${args[*]} --number_ios=$few|$many"
    add_sample instr "fio null $rw QD$qd 1T: whole process incl. startup" "" "" "" "" "" \
        "valgrind --tool=callgrind ${args[*]} --number_ios=$many" \
        "$(awk -v a="$ir2" -v n="$n2" 'BEGIN { printf "%.0f", a / n }')"
}

# 4 KiB random reads at QD 1 and 32 (writes on the null device cost the same: nothing moves)
instr_round() {
    local qd
    for qd in 1 32; do
        instr_storstack randread "$qd"
        instr_fio randread "$qd"
    done
}

section_inproc() {
    log "section in-process: RAM disk, null device, fio io_uring /dev/shm, fio null, memlimit"
    write_config "$WORK/ram.ini" ram Size=1G
    write_config "$WORK/null.ini" null Size=1G
    log "prefilling /dev/shm file for fio (1 GiB random data)"
    make_random_file "$SHM_PREFIX-shm.img"
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        log "in-process round $r/$REPEAT"
        inproc_round
    done
    rm -f "$SHM_PREFIX-shm.img"
    for ((r = 1; r <= REPEAT; r++)); do
        log "instructions/IO round $r/$REPEAT"
        instr_round
    done
    profile_inproc
}
