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
}

# memlimit_run THREADS: one run of the physical limit (random 4 KiB memcpy out of a buffer the
# size of the disk)
memlimit_run() {
    local t=$1 out label="memlimit (random 4 KiB memcpy, 1 GiB buffer) ${1}T"
    out=$("$BENCH_BIN/memlimit" --seconds "$RUNTIME" --threads "$t" --repeat 1) ||
        die "$label: memlimit failed"
    add_sample ram "$label" "$(jq -r '.copies_per_s' <<<"$out")" \
        "$(jq -r '.copies_per_s * 4096 / 1048576' <<<"$out")" "" "" "" \
        "build/bench/memlimit --seconds $RUNTIME --threads $t --repeat 1"
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

# instr_storstack RW QD: instructions per I/O of the null device. `storstack bench` has no
# fixed I/O count, so it runs twice under callgrind (short and long --seconds); the difference
# of the instructions divided by the difference of the I/Os its JSON reports is the cost of one
# I/O, with the boot and teardown (the same in both runs) cancelled out.
instr_storstack() {
    local rw=$1 qd=$2 ir1 ir2 n1 n2 short=1 long=3
    local label="storstack null $rw QD$qd 1T (callgrind)"
    ir1=$(callgrind_ir "$WORK/cg1.log" "$STORSTACK" bench "$DEVICE" --config "$WORK/null.ini" \
        --rw "$rw" --bs 4K --qd "$qd" --seconds $short --json)
    n1=$(jq -r '.ios' "$WORK/cg.out")
    # the long run's profile is kept for the report (bench/profile.sh)
    ir2=$(CG_KEEP=$WORK/cg-null-qd$qd.out callgrind_ir "$WORK/cg2.log" "$STORSTACK" bench \
        "$DEVICE" --config "$WORK/null.ini" --rw "$rw" --bs 4K --qd "$qd" --seconds $long --json)
    n2=$(jq -r '.ios' "$WORK/cg.out")
    ((n2 > n1)) || die "$label: the long run did no more I/O ($n2) than the short one ($n1)"
    add_sample instr "$label" "" "" "" "" "" \
        "valgrind --tool=callgrind build/storstack bench $DEVICE --config null.ini --rw $rw --bs 4K --qd $qd --seconds $short|$long --json" \
        "$(awk -v a="$ir1" -v b="$ir2" -v m="$n1" -v n="$n2" 'BEGIN { printf "%.0f", (b - a) / (n - m) }')"
}

# instr_fio RW QD: the same for fio's null engine, which has a fixed I/O count (--number_ios)
instr_fio() {
    local rw=$1 qd=$2 ir1 ir2 n1 n2 few=50000 many=150000 dir
    dir=$(dir_of "$rw")
    local label="fio null $rw QD$qd 1T (callgrind)"
    local -a args=(fio --name=null --ioengine=null --size=16G --bs=4k --rw="$rw" --iodepth="$qd"
        --thread --norandommap --randrepeat=0 --output-format=json)
    ir1=$(callgrind_ir "$WORK/cg1.log" "${args[@]}" --number_ios=$few)
    n1=$(jq -r ".jobs[0].$dir.total_ios" "$WORK/cg.out")
    ir2=$(callgrind_ir "$WORK/cg2.log" "${args[@]}" --number_ios=$many)
    n2=$(jq -r ".jobs[0].$dir.total_ios" "$WORK/cg.out")
    ((n2 > n1)) || die "$label: the long run did no more I/O ($n2) than the short one ($n1)"
    add_sample instr "$label" "" "" "" "" "" \
        "valgrind --tool=callgrind ${args[*]} --number_ios=$few|$many" \
        "$(awk -v a="$ir1" -v b="$ir2" -v m="$n1" -v n="$n2" 'BEGIN { printf "%.0f", (b - a) / (n - m) }')"
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
