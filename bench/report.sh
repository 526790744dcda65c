# shellcheck shell=bash
# bench/report.sh: writes docs/benchmarks.md from the store of results (bench/lib.sh): the
# machine and load, the goal table of issue 6, every figure beside its peer with the ratios,
# the exact commands, and the hand-written analysis kept from the previous report.
# Sourced by bench/run.sh.

fmt0() {
    [[ -z $1 ]] && { echo "–"; return; }
    awk -v v="$1" 'BEGIN { printf "%.0f", v }'
}

fmt2() {
    [[ -z $1 ]] && { echo "–"; return; }
    awk -v v="$1" 'BEGIN { printf "%.2f", v }'
}

# rows SECTION: its labels, one a line
rows() {
    tr '|' '\n' <<<"${SECTION_ROWS[$1]:-}" | sed '/^$/d'
}

# io_table SECTION [ns]: IOPS, MiB/s, latency; with "ns" also ns per I/O (1e9 x threads / IOPS)
io_table() {
    local section=$1 ns=${2:-} label iops t
    if [[ $ns == ns ]]; then
        echo "| figure | IOPS | ns/IO | MiB/s | p50 µs | p99 µs | p99.9 µs | runs (IOPS) |"
        echo "|--------|-----:|------:|------:|-------:|-------:|---------:|-------------|"
    else
        echo "| figure | IOPS | MiB/s | p50 µs | p99 µs | p99.9 µs | runs (IOPS) |"
        echo "|--------|-----:|------:|-------:|-------:|---------:|-------------|"
    fi
    while IFS= read -r label; do
        iops=$(med IOPS "$label")
        printf '| %s | %s |' "$label" "$(fmt0 "$iops")"
        if [[ $ns == ns ]]; then
            t=$(sed -n 's/.* \([0-9]*\)T$/\1/p' <<<"$label")
            printf ' %s |' "$(awk -v i="$iops" -v t="${t:-1}" 'BEGIN { if (i > 0) printf "%.0f", 1e9 * t / i; else print "–" }')"
        fi
        printf ' %s | %s | %s | %s | %s |\n' "$(fmt0 "$(med MBS "$label")")" \
            "$(fmt2 "$(med P50 "$label")")" "$(fmt2 "$(med P99 "$label")")" \
            "$(fmt2 "$(med P999 "$label")")" "$(runs IOPS "$label")"
    done < <(rows "$section")
}

# ratio_row TEXT A B [FIELD]: "| TEXT | ratio |" of the medians of FIELD (IOPS) of A and B
ratio_row() {
    local field=${4:-IOPS}
    printf '| %s | %s |\n' "$1" "$(ratio "$(med "$field" "$2")" "$(med "$field" "$3")")"
}

# ratio_grid ROWS PEERS PEER_NAME: the IOPS ratios of "ROWS rw QDq nT" to "PEERS rw QDq nT" over
# randread/randwrite, QD 1/32, 1/2 threads
ratio_grid() {
    local rw qd t
    for rw in randread randwrite; do
        for qd in 1 32; do
            for t in 1 2; do
                ratio_row "$1 $rw QD$qd ${t}T ÷ $3" "$1 $rw QD$qd ${t}T" "$2 $rw QD$qd ${t}T"
            done
        done
    done
}

GOALS=""
# goal TEXT VALUE OP(>=|<) LIMIT SHOWN_VALUE SHOWN_LIMIT: one row of the goal table
goal() {
    local text=$1 value=$2 op=$3 limit=$4 shown=$5 shown_limit=$6 verdict
    if [[ -z $value || $value == n/a ]]; then
        verdict="NOT MEASURED"
    elif [[ $op == ">=" ]]; then
        verdict=$(awk -v v="$value" -v l="$limit" 'BEGIN { if (v >= l) print "PASS"; else printf "MISS by %.0f%% (%.2f of the goal)", (l - v) / l * 100, v / l }')
    else
        verdict=$(awk -v v="$value" -v l="$limit" 'BEGIN { if (v < l) print "PASS"; else printf "MISS by %.0f%% (%.2f of the limit)", (v - l) / l * 100, v / l }')
    fi
    GOALS+="| $text | $shown | $op $shown_limit | **$verdict** |"$'\n'
}

build_goals() {
    local r v
    GOALS=""
    r=$(ratio "$(med IOPS "storstack ram randread QD32 1T")" "$(med IOPS "memlimit (random 4 KiB memcpy, 1 GiB buffer) 1T")")
    goal "RAM disk 4K randread QD32 1T ÷ physical limit (memlimit 1T)" "$r" ">=" 0.7 "$r" 0.7
    r=$(ratio "$(med IOPS "storstack ram randread QD32 1T")" "$(med IOPS "memlimit (random 4 KiB memcpy, 1 GiB buffer, huge pages) 1T")")
    goal "(the same against memlimit on 2 MiB huge pages, as the RAM disk's full regions are: the stricter limit)" "$r" ">=" 0.7 "$r" 0.7
    r=$(ratio "$(med IOPS "storstack ram randread QD32 1T")" "$(med IOPS "fio io_uring /dev/shm randread QD32 1T")")
    goal "RAM disk 4K randread QD32 1T ÷ fio io_uring /dev/shm QD32 1T" "$r" ">=" 5 "$r" 5
    r=$(ratio "$(med IOPS "storstack ram randread QD1 1T")" "$(med IOPS "fio io_uring /dev/shm randread QD1 1T")")
    goal "(same at QD1, for reference)" "$r" ">=" 5 "$r" 5
    r=$(ratio "$(med IOPS "storstack null randread QD32 1T")" "$(med IOPS "fio null randread QD32 1T")")
    v=$(med IOPS "storstack null randread QD32 1T")
    goal "null device 4K randread QD32 1T ÷ fio null engine QD32 1T ($(awk -v i="$v" 'BEGIN { if (i > 0) printf "%.0f ns/IO", 1e9 / i; else print "ns/IO not measured" }'))" "$r" ">=" 0.5 "$r" 0.5
    r=$(ratio "$(med IOPS "iscsi-perf 4K randread QD32 → storstack")" "$(med IOPS "iscsi-perf 4K randread QD32 → tgtd")")
    goal "iSCSI 4K randread QD32: storstack serve ÷ tgtd (IOPS)" "$r" ">=" 4 "$r" 4
    r=$(ratio "$(med IOPS "2 × iscsi-perf 4K randread QD32 (two sessions) → storstack")" "$(med IOPS "2 × iscsi-perf 4K randread QD32 (two sessions) → tgtd")")
    goal "(the same with two initiators at once, two sessions: for reference)" "$r" ">=" 4 "$r" 4
    r=$(ratio "$(med MBS "iscsi-perf 128K seq read QD32 → storstack")" "$(med MBS "iscsi-perf 128K seq read QD32 → tgtd")")
    goal "iSCSI 128K sequential read: storstack serve ÷ tgtd (MB/s)" "$r" ">=" 1 "$r" 1
    r=$(ratio "$(med IOPS "fio nbd randread QD32 → nbdkit+storstack")" "$(med IOPS "fio nbd randread QD32 → nbdkit memory")")
    goal "NBD fio 4K randread QD32: nbdkit+storstack ÷ nbdkit memory" "$r" ">=" 0.9 "$r" 0.9
    r=$(ratio "$(med IOPS "storstack file buffered randread QD32 1T")" "$(med IOPS "fio io_uring file buffered randread QD32 1T")")
    goal "file backend buffered 4K randread QD32 ÷ fio io_uring same file" "$r" ">=" 0.9 "$r" 0.9
    r=$(ratio "$(med IOPS "storstack file O_DIRECT randread QD32 1T")" "$(med IOPS "fio io_uring file O_DIRECT randread QD32 1T")")
    goal "file backend O_DIRECT 4K randread QD32 ÷ fio io_uring same file" "$r" ">=" 0.9 "$r" 0.9
    v=$(med EXTRA "storstack serve (built-in default) idle RSS")
    goal "default \`storstack serve\` idle RSS" "$v" "<" 65536 "$(fmt_mib "$v")" "64 MiB"
    v=$(med EXTRA "storstack serve, 1 TiB sparse RAM disk, 1 GiB written: RSS")
    goal "1 TiB sparse RAM disk, 1 GiB written: RSS" "$v" "<" 1153434 "$(fmt_mib "$v")" "1.1 GiB (1126.4 MiB)"
    v=$(med EXTRA "storstack serve: RSS per idle iSCSI session")
    goal "RSS per idle iSCSI session (100 sessions)" "$v" "<" 1024 "$(fmt0 "$v") KiB" "1 MiB"
}

fmt_mib() {
    [[ -z $1 ]] && { echo "–"; return; }
    awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1024 }'
}

# write_profile NAME TITLE perf|callgrind: one profile's table, or a line saying it is absent
write_profile() {
    local name=$1 title=$2 kind=$3
    echo "### $title"
    echo
    if [[ -z ${PROFILE[$name]:-} ]]; then
        echo "(not profiled in this run)"
    elif [[ $kind == perf ]]; then
        echo "| self | object | symbol |"
        echo "|-----:|--------|--------|"
        echo "${PROFILE[$name]}"
    else
        echo "| self | function |"
        echo "|-----:|----------|"
        echo "${PROFILE[$name]}"
    fi
    echo
}

# The hand-written analysis of the previous report, or a heading for one.
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

tool_versions() {
    echo "fio $(fio --version 2>/dev/null | sed 's/^fio-//'), $(nbdkit --version 2>/dev/null | head -1)," \
        "$(qemu-nbd --version 2>/dev/null | head -1 | sed 's/ (.*//')," \
        "tgt $(dpkg-query -W -f='${Version}' tgt 2>/dev/null), libiscsi-bin $(dpkg-query -W -f='${Version}' libiscsi-bin 2>/dev/null)," \
        "$(valgrind --version 2>/dev/null)"
}

write_commands() {
    local section label
    echo '```'
    for section in "$@"; do
        while IFS= read -r label; do
            echo "# $label"
            echo "${CMD[$label]}"
        done < <(rows "$section")
    done
    echo '```'
}

write_report() {
    local analysis tmp label qd t
    analysis=$(previous_analysis)
    build_goals
    tmp=$(mktemp "$DOC.XXXXXX")
    {
        echo "# Benchmarks"
        echo
        echo "Generated by \`bench/run.sh\` (\`make bench\`); do not edit by hand except between the"
        echo "analysis markers at the end, which reruns keep."
        echo
        echo "- Machine: $(machine_line)"
        echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'), storstack $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- . ':!docs/benchmarks.md' ':!docs/benchmarks-scaling.png' 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "- Load average (1 min) at start / end: $LOAD_START / $(cut -d' ' -f1 /proc/loadavg)"
        echo "  (other processes may share this machine; every figure and its peer ran alternately"
        echo "  in the same run, so compare ratios, not figures across reports)"
        echo "- Wall time of the run: $(((SECONDS - T_START) / 60)) min $(((SECONDS - T_START) % 60)) s"
        echo "- Each figure: the median of $REPEAT runs; a round runs every figure of a section once, so"
        echo "  a figure and its peer alternate in time. ${RUNTIME} s per in-process run, ${NET_RUNTIME} s per"
        echo "  network run$([[ ${BENCH_QUICK:-0} == 1 ]] && echo ' (**BENCH_QUICK=1: a quick look, not a measurement**)')."
        echo "- Tools: $(tool_versions)"
        echo
        echo "## Goals (issue 6)"
        echo
        echo "| goal | measured | goal | verdict |"
        echo "|------|---------:|-----:|---------|"
        printf '%s' "$GOALS"
        echo
        local fio32 mem1
        fio32=$(med IOPS "fio io_uring /dev/shm randread QD32 1T")
        mem1=$(med IOPS "memlimit (random 4 KiB memcpy, 1 GiB buffer) 1T")
        if [[ -n $fio32 && -n $mem1 ]]; then
            echo "The goal \"≥ 5× fio io_uring on /dev/shm\" at QD 32 needs $(fmt0 "$(awk -v f="$fio32" 'BEGIN { print 5 * f }')") IOPS"
            echo "here, against $(fmt0 "$mem1") random 4 KiB copies/s of the physical limit (memlimit, one"
            echo "thread): $(awk -v f="$fio32" -v m="$mem1" 'BEGIN { if (5 * f > m) print "above the limit, so no stack can meet it on this machine"; else print "below the limit, so it can be met" }')."
            echo "The QD 1 row shows the same ratio where fio's per-I/O cost dominates."
            echo
        fi
        echo "## In process: RAM disk (1 GiB, prefilled) vs fio io_uring on /dev/shm, and the physical limit"
        echo
        echo "Latency: storstack from submit to completion callback; fio its completion latency (clat)."
        echo "memlimit's IOPS are copies/s (one thread copies 4 KiB from a random block of a 1 GiB"
        echo "buffer, bench/memlimit.c). nT: n submitting threads (fio: n jobs on the same file)."
        echo
        io_table ram
        echo
        echo "| ratio (IOPS) | value |"
        echo "|--------------|------:|"
        ratio_grid "storstack ram" "fio io_uring /dev/shm" "fio io_uring"
        for t in 1 2; do
            ratio_row "storstack randread QD32 ${t}T ÷ memlimit ${t}T" "storstack ram randread QD32 ${t}T" "memlimit (random 4 KiB memcpy, 1 GiB buffer) ${t}T"
        done
        echo
        echo "## In process: null device (Backend = null, no data moved) vs fio's null engine"
        echo
        echo "ns/IO = 10⁹ × threads ÷ IOPS: the CPU time one submitting thread spends per I/O."
        echo
        io_table null ns
        echo
        echo "| ratio (IOPS) | value |"
        echo "|--------------|------:|"
        ratio_grid "storstack null" "fio null" "fio null"
        echo
        echo "### Instructions per I/O (valgrind --tool=callgrind)"
        echo
        echo "storstack: one callgrind run of \`storstack bench\` on the null device; the submitting"
        echo "thread's row is the inclusive count of tools/bench.c \`bench_thread\` (submission, the"
        echo "whole stack, and the completions that run inline) ÷ the I/Os of its JSON; the"
        echo "whole-process row divides every instruction (boot, teardown, other threads) by the same"
        echo "I/Os, an upper bound. fio (stripped, no per-function counts): Δinstructions ÷ ΔI/Os of"
        echo "two runs with \`--number_ios\` 50000 and 150000 (startup cancels, its helper thread"
        echo "counts), and the long run's total ÷ I/Os."
        echo
        echo "| figure | instructions/IO | runs |"
        echo "|--------|----------------:|------|"
        while IFS= read -r label; do
            printf '| %s | %s | %s |\n' "$label" "$(fmt0 "$(med EXTRA "$label")")" "$(runs EXTRA "$label")"
        done < <(rows instr)
        echo
        for qd in 1 32; do
            echo "- QD$qd: storstack null (submitting thread) ÷ fio null (Δ of two runs) instructions/IO = $(ratio "$(med EXTRA "storstack null randread QD$qd 1T: submitting thread (bench_thread inclusive)")" "$(med EXTRA "fio null randread QD$qd 1T: Δ of two runs")")"
        done
        echo
        echo "## Scaling: 4 KiB random read IOPS against queue depth and threads"
        echo
        echo "![IOPS against queue depth]($(basename "$PLOT"))"
        echo
        echo "| QD | storstack 1T | fio io_uring 1T | ratio | storstack 2T | fio io_uring 2 jobs | ratio |"
        echo "|---:|-------------:|----------------:|------:|-------------:|--------------------:|------:|"
        for qd in "${SCALING_QDS[@]}"; do
            printf '| %s |' "$qd"
            for t in 1 2; do
                local a b
                a=$(med IOPS "scaling: storstack ram randread QD$qd ${t}T")
                b=$(med IOPS "scaling: fio io_uring /dev/shm randread QD$qd ${t}T")
                printf ' %s | %s | %s |' "$(fmt0 "$a")" "$(fmt0 "$b")" "$(ratio "$a" "$b")"
            done
            echo
        done
        echo
        echo "## File backend vs fio io_uring on the same file"
        echo
        echo "A 1 GiB file of random data under build/bench/ ($(stat -f -c %T "$BENCH_BIN" 2>/dev/null) filesystem),"
        echo "read whole before each round's buffered pair so that both start from a warm page cache"
        echo "(fio with \`--invalidate=0\`: by default it drops the file's cache before a job)."
        echo
        io_table file
        echo
        echo "| ratio (IOPS) | value |"
        echo "|--------------|------:|"
        ratio_row "storstack file buffered ÷ fio io_uring buffered" "storstack file buffered randread QD32 1T" "fio io_uring file buffered randread QD32 1T"
        ratio_row "storstack file O_DIRECT ÷ fio io_uring O_DIRECT" "storstack file O_DIRECT randread QD32 1T" "fio io_uring file O_DIRECT randread QD32 1T"
        echo
        echo "## iSCSI: iscsi-perf against storstack serve and tgtd"
        echo
        echo "storstack serve: a 1 GiB RAM LUN filled with random data through its management socket."
        echo "tgtd: LUN 1 on a 1 GiB /dev/shm file of random data (bstype rdwr). Both on 127.0.0.1,"
        echo "one session each (the \"2 ×\" rows: two iscsi-perf at once, two sessions, their sum);"
        echo "iscsi-perf's \"iops average\" of the whole run (login included for both)."
        echo "MiB/s: iscsi-perf's \"MB/s\", which is MiB/s (IOPS × block ÷ 2²⁰)."
        echo
        io_table iscsi
        echo
        echo "| ratio | value |"
        echo "|-------|------:|"
        ratio_row "4K randread QD32 IOPS: storstack ÷ tgtd" "iscsi-perf 4K randread QD32 → storstack" "iscsi-perf 4K randread QD32 → tgtd"
        ratio_row "4K randread QD32 IOPS, two initiators at once: storstack ÷ tgtd" "2 × iscsi-perf 4K randread QD32 (two sessions) → storstack" "2 × iscsi-perf 4K randread QD32 (two sessions) → tgtd"
        ratio_row "128K sequential read MiB/s: storstack ÷ tgtd" "iscsi-perf 128K seq read QD32 → storstack" "iscsi-perf 128K seq read QD32 → tgtd" MBS
        echo
        echo "## NBD: nbdkit + storstack plugin vs nbdkit memory vs qemu-nbd"
        echo
        echo "All three exports hold the same 1 GiB of random data. qemu-nbd serves a /dev/shm file"
        echo "with \`--cache=writeback --aio=threads --shared=8 -t\` (its default cache mode; tmpfs has no"
        echo "O_DIRECT). fio: one connection, QD 32. nbdcopy: the whole export to \`null:\`, nbdcopy's"
        echo "defaults; its row gives MiB/s, and the seconds in the runs column."
        echo
        io_table nbd | sed '/nbdcopy/d'
        echo
        echo "| nbdcopy 1 GiB → null: | MiB/s | seconds (runs) |"
        echo "|-----------------------|------:|----------------|"
        while IFS= read -r label; do
            [[ $label == nbdcopy* ]] || continue
            printf '| %s | %s | %s |\n' "$label" "$(fmt0 "$(med MBS "$label")")" "${R_EXTRA[$label]# }"
        done < <(rows nbd)
        echo
        echo "| ratio | value |"
        echo "|-------|------:|"
        local rw
        for rw in randread randwrite; do
            ratio_row "fio $rw IOPS: nbdkit+storstack ÷ nbdkit memory" "fio nbd $rw QD32 → nbdkit+storstack" "fio nbd $rw QD32 → nbdkit memory"
            ratio_row "fio $rw IOPS: nbdkit+storstack ÷ qemu-nbd" "fio nbd $rw QD32 → nbdkit+storstack" "fio nbd $rw QD32 → qemu-nbd"
        done
        ratio_row "nbdcopy MiB/s: nbdkit+storstack ÷ nbdkit memory" "nbdcopy 1 GiB → null: from nbdkit+storstack" "nbdcopy 1 GiB → null: from nbdkit memory" MBS
        ratio_row "nbdcopy MiB/s: nbdkit+storstack ÷ qemu-nbd" "nbdcopy 1 GiB → null: from nbdkit+storstack" "nbdcopy 1 GiB → null: from qemu-nbd" MBS
        echo
        echo "## Memory (VmRSS)"
        echo
        echo "The 1 GiB written to the 1 TiB disk: sequential 1 MiB writes of random data through the"
        echo "management socket (\`storstack bench --server ... --size 1G --prefill\`, 8 in flight). Per"
        echo "session: (RSS with $SESSIONS idle logged-in sessions − RSS before) ÷ $SESSIONS, the sessions"
        echo "held by bench/sessions.c (libiscsi, one connection each). Each run in fresh processes."
        echo
        echo "| figure | median | runs (KiB) |"
        echo "|--------|-------:|------------|"
        while IFS= read -r label; do
            if [[ $label == *"per idle"* ]]; then
                printf '| %s | %s KiB | %s |\n' "$label" "$(fmt0 "$(med EXTRA "$label")")" "${R_EXTRA[$label]# }"
            else
                printf '| %s | %s | %s |\n' "$label" "$(fmt_mib "$(med EXTRA "$label")")" "${R_EXTRA[$label]# }"
            fi
        done < <(rows memory)
        echo
        echo "## Where the time goes (profiles of this run)"
        echo
        echo "Self time per symbol, top $PROFILE_TOP; \`perf record -e cpu-clock -F 2999\` (sampling;"
        echo "hardware counters are often absent in VMs) and callgrind's self instructions. These are"
        echo "the automatic part; the analysis below reads them."
        echo
        write_profile ram-qd32 "storstack bench, RAM disk, 4K randread QD32 1T (perf, after the prefill)" perf
        write_profile null-callgrind "storstack bench, null device, 4K randread QD32 1T (callgrind, self instructions)" callgrind
        write_profile iscsi-serve "storstack serve under iscsi-perf 4K randread QD32 (perf -p, ${NET_RUNTIME} s)" perf
        write_profile nbd-plugin "nbdkit + storstack plugin under fio nbd 4K randread QD32 (perf -p, ${NET_RUNTIME} s)" perf
        echo "## Commands"
        echo
        echo "\`ram.ini\`, \`null.ini\`, \`file0.ini\`/\`file1.ini\`, \`tib.ini\`: one virtual adapter"
        echo "(ROOT\\VMINIPORT) with one disk, \`Backend = ram\` (Size = 1G), \`null\`, \`file\` (Path = the"
        echo "file, Direct = 0/1) and \`ram\` (Size = 1T); written by bench/lib.sh \`write_config\`."
        echo "\`--prefill\` writes the whole disk with random data before the clock starts. PORT and S"
        echo "stand for the run's port and socket (BENCH_ISCSI_PORT, BENCH_NBD_PORT)."
        echo
        write_commands ram null instr scaling file iscsi nbd memory
        echo
        echo "$analysis"
    } >"$tmp"
    mv "$tmp" "$DOC"
    log "wrote ${DOC#"$ROOT"/} and ${PLOT#"$ROOT"/}"
}
