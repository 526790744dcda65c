#!/usr/bin/env bash
# bench/run.sh: storstack side by side with the tools users would otherwise pick, all in one run
# on one machine, and docs/benchmarks.md (plus docs/benchmarks-scaling.png) from it. `make bench`
# runs it. Sections (bench/*.sh, in this order):
#   inproc   RAM disk and null device through the whole stack vs fio io_uring on /dev/shm, fio's
#            null engine, the physical limit (bench/memlimit.c), instructions/IO (callgrind)
#   scaling  IOPS against queue depth 1..128 and 1-2 threads, with a gnuplot PNG
#   file     the file backend vs fio io_uring on the same file, buffered and O_DIRECT
#   iscsi    iscsi-perf against `storstack serve` and tgtd
#   nbd      fio's nbd engine and nbdcopy against nbdkit+plugin, nbdkit memory, qemu-nbd
#   memory   RSS: idle serve, 1 TiB sparse RAM disk with 1 GiB written, per idle iSCSI session
# Each figure is the median of 3 runs; a round runs every figure of a section once, so a figure
# and its peer alternate in time. It keeps the report's hand-written analysis between the
# <!-- analysis --> markers. Every server it starts binds to 127.0.0.1 and is stopped on exit,
# failure or Ctrl-C.
#
# Usage (from anywhere; paths are the repository's):  bench/run.sh
#   BENCH_QUICK=1      1 s per figure, 1 run (a quick look while developing; says so in the report)
#   BENCH_SECONDS      seconds per in-process run (default 2), BENCH_NET_SECONDS per network
#                      run (default 3), BENCH_REPEAT runs per figure (default 3, at least 3
#                      unless BENCH_QUICK)
#   BENCH_SECTIONS     which sections, e.g. "inproc memory" (default: all; the report leaves
#                      the others' figures empty and their goals NOT MEASURED)
#   BENCH_ISCSI_PORT   first of 5 loopback ports for the iSCSI servers (default 3360)
#   BENCH_NBD_PORT     first of 3 loopback ports for the NBD servers (default 10850)
#   STORSTACK, STORSTACK_NBDKIT   the binaries (default build/storstack, build/storstack-nbdkit.so;
#                      not built here: `make bench` builds them first)
#   BENCH_DOC, BENCH_PLOT         where to write the report and the plot
# Needs the `bench` set of scripts/install-deps.sh (installed here when run as root).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
# shellcheck source=bench/inproc.sh
source "$HERE/inproc.sh"
# shellcheck source=bench/scaling.sh
source "$HERE/scaling.sh"
# shellcheck source=bench/file.sh
source "$HERE/file.sh"
# shellcheck source=bench/iscsi.sh
source "$HERE/iscsi.sh"
# shellcheck source=bench/nbd.sh
source "$HERE/nbd.sh"
# shellcheck source=bench/memory.sh
source "$HERE/memory.sh"
# shellcheck source=bench/profile.sh
source "$HERE/profile.sh"
# shellcheck source=bench/report.sh
source "$HERE/report.sh"

readonly ALL_SECTIONS=(inproc scaling file iscsi nbd memory)
readonly TOOLS=(fio jq cc pkg-config valgrind callgrind_annotate perf gnuplot iscsi-perf tgtd tgtadm
    nbdkit nbdcopy qemu-nbd timeout mkfifo)

check_prerequisites() {
    [[ $RUNTIME =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a whole number above 0, got '$RUNTIME'"
    [[ $NET_RUNTIME =~ ^[1-9][0-9]*$ ]] || die "BENCH_NET_SECONDS must be a whole number above 0, got '$NET_RUNTIME'"
    [[ $REPEAT =~ ^[0-9]+$ ]] || die "BENCH_REPEAT must be a whole number, got '$REPEAT'"
    [[ ${BENCH_QUICK:-0} == 1 ]] || ((REPEAT >= 3)) || die "BENCH_REPEAT must be at least 3 (each figure is a median), got $REPEAT"
    local s ok
    for s in $SECTIONS; do
        ok=0
        for a in "${ALL_SECTIONS[@]}"; do [[ $s == "$a" ]] && ok=1; done
        ((ok)) || die "unknown section '$s' in BENCH_SECTIONS (known: ${ALL_SECTIONS[*]})"
    done
    if [[ $(id -u) == 0 ]]; then
        "$ROOT/scripts/install-deps.sh" bench || die "scripts/install-deps.sh bench failed"
    fi
    local t missing=()
    for t in "${TOOLS[@]}"; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]}: run 'scripts/install-deps.sh bench' as root (or 'make bench')"
    pkg-config --exists libiscsi || die "libiscsi's headers are missing (bench/sessions.c): run 'scripts/install-deps.sh bench'"
    fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd engine (Debian's fio has it)"
    fio --enghelp=io_uring >/dev/null 2>&1 || die "this fio has no io_uring engine"
    [[ -x $STORSTACK ]] || die "no storstack binary at $STORSTACK: run 'make' first (or set STORSTACK=path)"
    [[ -f $PLUGIN ]] || die "no nbdkit plugin at $PLUGIN: build with nbdkit-plugin-dev installed (or set STORSTACK_NBDKIT)"
    [[ -d /dev/shm && -w /dev/shm ]] || die "/dev/shm is not a writable directory"
    local avail_kib
    avail_kib=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
    ((avail_kib > 6 * 1024 * 1024)) || die "need about 6 GiB of free memory (RAM disks, tmpfs files, memlimit's buffer); $((avail_kib / 1024)) MiB available"
}

build_helpers() {
    mkdir -p "$BENCH_BIN"
    cc -O2 -std=c11 -Wall -Wextra -pthread -o "$BENCH_BIN/memlimit" "$ROOT/bench/memlimit.c" ||
        die "cannot compile bench/memlimit.c"
    # shellcheck disable=SC2046 # pkg-config prints several words
    cc -O2 -std=c11 -Wall -Wextra -o "$BENCH_BIN/sessions" "$ROOT/bench/sessions.c" \
        $(pkg-config --cflags --libs libiscsi) || die "cannot compile bench/sessions.c"
}

main() {
    SECTIONS=${BENCH_SECTIONS:-${ALL_SECTIONS[*]}}
    check_prerequisites
    LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/storstack-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'echo "bench/run.sh: interrupted" >&2; exit 130' INT TERM
    build_helpers
    log "storstack $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $REPEAT runs per figure, ${RUNTIME} s in process, ${NET_RUNTIME} s network; load $LOAD_START"
    local s
    local t0
    for s in $SECTIONS; do
        t0=$SECONDS
        "section_$s"
        log "section $s took $((SECONDS - t0)) s"
    done
    [[ " $SECTIONS " == *" scaling "* ]] || log "no scaling section: the plot is not redrawn"
    write_report
    log "done in $((SECONDS - T_START)) s"
}

main "$@"
