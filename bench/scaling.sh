# shellcheck shell=bash
# bench/scaling.sh: IOPS against queue depth (1..128) and threads (1, 2), 4 KiB random reads of
# the 1 GiB RAM disk, beside fio io_uring on a 1 GiB /dev/shm file at the same points; a PNG
# plot (gnuplot). Every point is measured here, in the same rounds (the "ram" section's QD 1 and
# 32 figures ran at another moment, under other load, and are not mixed in). Sourced by
# bench/run.sh.

readonly SCALING_QDS=(1 2 4 8 16 32 64 128)

scaling_round() {
    local qd t
    for t in 1 2; do
        for qd in "${SCALING_QDS[@]}"; do
            ss_bench scaling "scaling: storstack ram randread QD$qd ${t}T" ram.ini "$RUNTIME" \
                --rw randread --qd "$qd" --threads "$t" --prefill
            fio_run scaling "scaling: fio io_uring /dev/shm randread QD$qd ${t}T" read "$RUNTIME" \
                --name=uring-randread --filename="$SHM_PREFIX-shm.img" --size=1G --bs=4k \
                --ioengine=io_uring --direct=0 --rw=randread --iodepth="$qd" --numjobs="$t"
        done
    done
}

# The IOPS of a scaling point, wherever it was measured
scaling_iops() {
    med IOPS "$1"
}

write_scaling_plot() {
    local data=$WORK/scaling.dat qd t
    {
        echo "# qd storstack_1T fio_1T storstack_2T fio_2T (IOPS)"
        for qd in "${SCALING_QDS[@]}"; do
            printf '%s' "$qd"
            for t in 1 2; do
                printf ' %s %s' "$(scaling_iops "scaling: storstack ram randread QD$qd ${t}T")" \
                    "$(scaling_iops "scaling: fio io_uring /dev/shm randread QD$qd ${t}T")"
            done
            echo
        done
    } >"$data"
    gnuplot <<EOF || die "gnuplot failed to draw $PLOT"
set terminal pngcairo size 900,540 noenhanced font ",11"
set output "$PLOT"
set title "4 KiB random read, 1 GiB RAM disk vs fio io_uring on /dev/shm (median of $REPEAT x ${RUNTIME} s)"
set xlabel "queue depth per thread"
set ylabel "IOPS (millions)"
set logscale x 2
set xrange [0.8:160]
set yrange [0:*]
set xtics (1, 2, 4, 8, 16, 32, 64, 128)
set key top left
set grid
plot "$data" using 1:(\$2/1e6) with linespoints lw 2 title "storstack 1 thread", \
     "$data" using 1:(\$4/1e6) with linespoints lw 2 title "storstack 2 threads", \
     "$data" using 1:(\$3/1e6) with linespoints lw 2 dt 2 title "fio io_uring 1 job", \
     "$data" using 1:(\$5/1e6) with linespoints lw 2 dt 2 title "fio io_uring 2 jobs"
EOF
}

section_scaling() {
    log "section scaling: QD ${SCALING_QDS[*]} x threads 1, 2"
    [[ -f $WORK/ram.ini ]] || write_config "$WORK/ram.ini" ram Size=1G
    make_random_file "$SHM_PREFIX-shm.img"
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        log "scaling round $r/$REPEAT"
        scaling_round
    done
    rm -f "$SHM_PREFIX-shm.img"
    write_scaling_plot
}
