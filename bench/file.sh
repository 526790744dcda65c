# shellcheck shell=bash
# bench/file.sh: the file backend (Backend = file, io_uring) on a 1 GiB file on a real
# filesystem (under build/, not tmpfs) beside fio io_uring on the same file, 4 KiB random reads
# at QD 32, buffered and O_DIRECT (Direct = 1 / --direct=1). fio runs with --invalidate=0: by
# default it drops the file's page cache before each job, which would make its buffered figure
# a cold-cache one beside storstack's warm one. Sourced by bench/run.sh.

file_round() {
    local direct mode
    for direct in 0 1; do
        mode=buffered
        if [[ $direct == 1 ]]; then
            mode=O_DIRECT
        else
            # fio's O_DIRECT job of the round before dropped the file's cached pages: read the
            # whole file, so both buffered runs start from a warm page cache
            cat "$FILE_IMG" >/dev/null
        fi
        ss_bench file "storstack file $mode randread QD32 1T" "file$direct.ini" "$RUNTIME" \
            --rw randread --qd 32 --threads 1
        fio_run file "fio io_uring file $mode randread QD32 1T" read "$RUNTIME" \
            --name=uring-file --filename="$FILE_IMG" --size=1G --bs=4k --ioengine=io_uring \
            --direct="$direct" --invalidate=0 --rw=randread --iodepth=32 --numjobs=1
    done
}

section_file() {
    FILE_IMG=$BENCH_BIN/file-backend.img
    log "section file backend: $FILE_IMG (filesystem $(stat -f -c %T "$BENCH_BIN"))"
    [[ $(stat -f -c %T "$BENCH_BIN") != tmpfs ]] ||
        die "$BENCH_BIN is on tmpfs: the file backend must be measured on a real filesystem"
    make_random_file "$FILE_IMG"
    write_config "$WORK/file0.ini" file "Path=$FILE_IMG" Direct=0
    write_config "$WORK/file1.ini" file "Path=$FILE_IMG" Direct=1
    local r
    for ((r = 1; r <= REPEAT; r++)); do
        log "file round $r/$REPEAT"
        file_round
    done
    rm -f "$FILE_IMG"
}
