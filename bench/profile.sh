# shellcheck shell=bash
# bench/profile.sh: where the time goes, for the report's missed goals: `perf record -e
# cpu-clock` (hardware counters are often absent in VMs) of storstack's RAM disk randread QD 32,
# of `storstack serve` under iscsi-perf 4K QD 32 and of nbdkit + the plugin under fio's nbd
# engine; callgrind's self cost per function of the null device (the per-I/O stack cost). Each
# profile is the top symbols by self time. Not figures: diagnostics. Sourced by bench/run.sh.

declare -A PROFILE=()
readonly PROFILE_TOP=15

# perf_top DATA: the top symbols (self) of a perf.data, as Markdown table rows
perf_top() {
    perf report -i "$1" --no-children --sort dso,symbol --stdio 2>/dev/null |
        awk -v n="$PROFILE_TOP" '/^#/ || NF == 0 { next }
            { pct = $1; dso = $2; $1 = ""; $2 = ""; $3 = ""; sub(/^ +/, ""); sub(/( +-)+ *$/, "");
              if (++k <= n) printf "| %s | %s | `%s` |\n", pct, dso, $0 }'
}

# profile_perf_cmd NAME DELAY_MS CMD...: perf record of a command, after DELAY_MS
profile_perf_cmd() {
    local name=$1 delay=$2
    shift 2
    perf record -q -e cpu-clock -F 2999 -D "$delay" -o "$WORK/$name.perf" -- "$@" \
        >/dev/null 2>"$WORK/$name.perf.log" || {
        log "profile $name: perf record failed: $(tail -2 "$WORK/$name.perf.log")"
        return 0
    }
    PROFILE[$name]=$(perf_top "$WORK/$name.perf")
}

# profile_perf_pid NAME PID SECONDS: perf record of a running process
profile_perf_pid() {
    local name=$1 pid=$2 secs=$3
    perf record -q -e cpu-clock -F 2999 -p "$pid" -o "$WORK/$name.perf" -- sleep "$secs" \
        >/dev/null 2>"$WORK/$name.perf.log" || {
        log "profile $name: perf record failed: $(tail -2 "$WORK/$name.perf.log")"
        return 0
    }
    PROFILE[$name]=$(perf_top "$WORK/$name.perf")
}

# callgrind_top FILE: the top functions (self instructions) of a callgrind output
callgrind_top() {
    callgrind_annotate --threshold=100 "$1" 2>/dev/null |
        awk -v n="$PROFILE_TOP" '/PROGRAM TOTALS/ { started = 1; next }
            started && /^ *[0-9,]+ +\( *[0-9.]+%\)/ {
              line = $0; sub(/ \[[^]]*\]$/, "", line)
              pct = line; sub(/^[^(]*\( */, "", pct); sub(/\).*$/, "", pct)
              n2 = split(line, parts, ":"); fn = parts[n2]
              if (++k <= n) printf "| %s | `%s` |\n", pct, fn }'
}

profile_inproc() {
    log "profile: storstack RAM disk randread QD32 1T (perf)"
    # the prefill takes ~1.5 s: start sampling after 3 s of a 3 s + RUNTIME s run
    profile_perf_cmd ram-qd32 3000 "$STORSTACK" bench "$DEVICE" --config "$WORK/ram.ini" \
        --rw randread --bs 4K --qd 32 --seconds "$((3 + RUNTIME))" --prefill --json
    if [[ -f $WORK/cg-null-qd32.out ]]; then
        PROFILE[null-callgrind]=$(callgrind_top "$WORK/cg-null-qd32.out")
    fi
}
