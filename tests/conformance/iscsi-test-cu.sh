#!/usr/bin/env bash
# Conformance of the iSCSI target (frontends/iscsi) and the SCSI disk behind it, judged by an
# outside suite: libiscsi's iscsi-test-cu (Debian libiscsi-bin). Starts `storstack serve` with a
# private socket on a free loopback port, checks the libiscsi tools (iscsi-ls, iscsi-inq,
# iscsi-readcapacity16), runs iscsi-test-cu and reports run/passed/failed/skipped per family.
# SCSI.ReadOnly runs again against a serve with a write-protected LU, and the removable-medium
# suites (PreventAllow, StartStopUnit, NoMedia) and the "LBPPB < 2" tests against one with a
# removable LU of 4 KiB physical blocks; their results stand for those tests.
# With --tgtd (and tgtd installed) the same suite runs against tgtd with a RAM-backed LUN (a
# sparse file in /dev/shm) in the same run, side by side.
#
# CUnit counts a skipped test as passed and its exit code says nothing about failures, so every
# test is classified from its own output: its closing mark (CUnit's "passed" or "FAILED") is the
# verdict; a passed test that printed a [SKIPPED] line before that mark is a skip (with the
# reason the suite printed). A "[FAILED]" line inside a test that CUnit passed is a check the
# test expected to fail (iSCSIDataSnInvalid logs its refused writes that way), not a failure.
#
# Usage: tests/conformance/iscsi-test-cu.sh [--build DIR] [--all | --test SPEC]... [--tgtd]
#            [--summary FILE] [--allow-fail]
#   (default)     the whole suite, --test=ALL, with the URL twice (enables SCSI.MultipathIO),
#                 -d (data-destroying tests) and -S (SANITIZE tests)
#   --test SPEC   one iscsi-test-cu spec (FAMILY[.SUITE[.TEST]]), repeatable
#   --tgtd        also run the same specs against tgtd (skipped with a note if not installed)
#   --summary F   write the per-family table, the skip reasons and the failures (Markdown) to F
#   --allow-fail  exit 0 even when tests fail (for measuring); default: exit 1 on any failure
# Exit 77 (skipped) when libiscsi-bin is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
specs=()
with_tgtd=0
summary=
allow_fail=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$2; shift 2 ;;
    --all) specs+=(ALL); shift ;;
    --test) specs+=("$2"); shift 2 ;;
    --tgtd) with_tgtd=1; shift ;;
    --summary) summary=$2; shift 2 ;;
    --allow-fail) allow_fail=1; shift ;;
    *) echo "iscsi-test-cu.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ ${#specs[@]} -eq 0 ] && specs=(ALL)
for tool in iscsi-ls iscsi-inq iscsi-readcapacity16 iscsi-test-cu; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed (apt-get install libiscsi-bin)"; exit 77; }
done
bin="$build/storstack"
[ -x "$bin" ] || { echo "iscsi-test-cu.sh: no $bin (build first)" >&2; exit 2; }

tmp=$(mktemp -d)
serve_pid=
tgtd_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    if [ -n "$tgtd_pid" ]; then
        # tgtd ignores SIGTERM while it has targets: ask it to shut down, then make sure.
        tgtadm -C "$ctl" --op delete --mode system >/dev/null 2>&1
        for _ in $(seq 30); do kill -0 "$tgtd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$tgtd_pid" 2>/dev/null
        wait "$tgtd_pid" 2>/dev/null
    fi
    rm -f "/dev/shm/storstack-conformance-$$.img"
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_serve WHO [ARG...]: starts `storstack serve ARG...` on a private socket and port 0 (the
# kernel picks a free port, which serve prints); sets started_pid and started_port, or prints the
# log and returns 1 (started_pid still names the process, for the caller to stop).
start_serve() {
    local who=$1
    shift
    "$bin" serve "$@" --socket "$tmp/$who.sock" --iscsi-portal 127.0.0.1:0 >"$tmp/$who.log" 2>&1 &
    started_pid=$!
    for _ in $(seq 100); do
        grep -q "serving on" "$tmp/$who.log" 2>/dev/null && break
        kill -0 "$started_pid" 2>/dev/null || break
        sleep 0.1
    done
    started_port=$(sed -n 's/^storstack: iSCSI target .* on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
        "$tmp/$who.log")
    grep -q "serving on" "$tmp/$who.log" && [ -n "$started_port" ] && return 0
    cat "$tmp/$who.log"
    echo "storstack serve ($who) did not start, or printed no iSCSI portal" >&2
    return 1
}

# ---- storstack serve with its built-in default ----
start_serve storstack
rc=$?
serve_pid=$started_pid
[ $rc = 0 ] || exit 1
port=$started_port
ss_url="iscsi://127.0.0.1:$port/iqn.2026-11.org.storstack:default/0"

# ---- tgtd with a RAM-backed LUN 1 (LUN 0 is tgtd's controller) on its own control port ----
tgt_url=
if [ $with_tgtd = 1 ]; then
    if command -v tgtd >/dev/null && command -v tgtadm >/dev/null; then
        tport=$(free_port)
        ctl=$((20000 + $$ % 10000))
        img="/dev/shm/storstack-conformance-$$.img"
        truncate -s 1G "$img"
        tgtd -f -C "$ctl" --iscsi portal="127.0.0.1:$tport" >"$tmp/tgtd.log" 2>&1 &
        tgtd_pid=$!
        ok=0
        for _ in $(seq 50); do
            if tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 \
                -T iqn.2026-11.org.storstack:tgtd 2>/dev/null; then ok=1; break; fi
            sleep 0.1
        done
        if [ $ok = 1 ] &&
            tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img" &&
            tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL; then
            tgt_url="iscsi://127.0.0.1:$tport/iqn.2026-11.org.storstack:tgtd/1"
        else
            echo "NOTE: tgtd did not start; the side-by-side run is left out"; cat "$tmp/tgtd.log"
        fi
    else
        echo "NOTE: tgtd not installed (apt-get install tgt); the side-by-side run is left out"
    fi
fi

tool_fail=0
echo "== libiscsi tools against $ss_url"
timeout 30 iscsi-ls -s "iscsi://127.0.0.1:$port" || tool_fail=1
timeout 30 iscsi-inq "$ss_url" | head -12 || tool_fail=1
timeout 30 iscsi-readcapacity16 "$ss_url" || tool_fail=1

# One line per test: "suite<TAB>test<TAB>result<TAB>reason".
classify() {
    awk '
        function flush() {
            if (name == "") return
            r = failed ? "FAILED" : (skip != "" ? "SKIPPED" : "passed")
            printf "%s\t%s\t%s\t%s\n", suite, name, r, failed ? fail_reason : skip
            name = ""
        }
        /^Suite: / { flush(); suite = $2; next }
        /^Run Summary/ { flush(); next }
        /^  Test: / {
            flush(); name = $2; skip = ""; failed = 0; fail_reason = ""; closed = 0
            sub(/^  Test: [^ ]* \.\.\./, "")
        }
        name == "" { next }
        # A test ends with "passed" or "FAILED" (alone or after "..."); what a suite prints after
        # that is its cleanup (e.g. "PERSISTENT RESERVE IN is not implemented"), not the test.
        # (The "Test:" prefix is gone from $0 here, so both "...passed" and a lone "passed" start
        # the line; cleanup text may follow on the same line.)
        /^passed/ { closed = 1 }
        /^FAILED/ { closed = 1; failed = 1 }
        /\[SKIPPED\]/ && skip == "" && !closed { s = $0; sub(/.*\[SKIPPED\] */, "", s); skip = s }
        /\[FAILED\]/ && fail_reason == "" { s = $0; sub(/.*\[FAILED\] */, "", s); fail_reason = s }
        / - CU_ASSERT/ && fail_reason == "" { s = $0; sub(/^ *[0-9]+\. */, "", s); fail_reason = s }
        END { flush() }'
}

# run_suite NAME URL: runs every spec, writes $tmp/NAME.tests
run_suite() {
    local who=$1 url=$2 spec
    : >"$tmp/$who.tests"
    for spec in "${specs[@]}"; do
        local log="$tmp/$who.$RANDOM.log" t0=$SECONDS
        # The URL twice: a second path to the same LU enables the MultipathIO tests.
        timeout 900 iscsi-test-cu -d -S --test="$spec" "$url" "$url" >"$log" 2>&1
        local rc=$?
        [ $rc = 124 ] && echo "$who: iscsi-test-cu --test=$spec timed out" >&2
        classify <"$log" >>"$tmp/$who.tests"
        echo "$who: --test=$spec: $(wc -l <"$log") lines of output in $((SECONDS - t0)) s"
        cp "$log" "$tmp/$who.last.log"
    done
}

totals() { # file -> "run passed failed skipped"
    awk -F'\t' '{ r++; if ($3 == "passed") p++; else if ($3 == "FAILED") f++; else s++ }
        END { printf "%d %d %d %d\n", r, p, f, s }' "$1"
}

run_suite storstack "$ss_url"
[ -n "$tgt_url" ] && run_suite tgtd "$tgt_url"

# A RAM LU of 256M with the given extra unit values (one per line), for a serve of its own.
lu_ini() {
    printf '%s\n' '[Enum\Root\VMINIPORT\0000]' 'HardwareID = multi:ROOT\VMINIPORT' \
        'DeviceDesc = storstack virtual storage adapter' \
        '[Enum\Root\VMINIPORT\0000\Device Parameters\Target0\Lun0]' 'Type = disk' \
        'Backend = ram' 'Size = 256M' "$@"
}

# run_on_serve WHO INI SPEC...: runs the specs against a `storstack serve` of its own started with
# INI; its results replace the main run's rows of the same suite.test. Returns 1 when the serve
# did not start.
run_on_serve() {
    local who=$1 ini=$2 pid port saved
    shift 2
    if ! start_serve "$who" --config "$ini"; then
        kill -TERM "$started_pid" 2>/dev/null; wait "$started_pid" 2>/dev/null
        return 1
    fi
    pid=$started_pid
    port=$started_port
    saved=("${specs[@]}")
    specs=("$@")
    run_suite "$who" "iscsi://127.0.0.1:$port/iqn.2026-11.org.storstack:default/0"
    specs=("${saved[@]}")
    awk -F'\t' 'NR == FNR { seen[$1 "." $2] = 1; next } !(($1 "." $2) in seen)' \
        "$tmp/$who.tests" "$tmp/storstack.tests" >"$tmp/main.tests"
    cat "$tmp/main.tests" "$tmp/$who.tests" >"$tmp/storstack.tests"
    kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

# Suites that test a kind of LU the default one is not: SCSI.ReadOnly wants a write-protected
# LU. They run again against a second `storstack serve` with such a LU, and those results stand
# for the suite (the report says so).
ro_note=
if printf '%s\n' "${specs[@]}" | grep -qE '^(ALL|SCSI|SCSI\.ReadOnly.*)$'; then
    lu_ini 'ReadOnly = 1' >"$tmp/ro.ini"
    if run_on_serve storstack-ro "$tmp/ro.ini" SCSI.ReadOnly; then
        ro_note="SCSI.ReadOnly ran against a second \`storstack serve\` whose LU is write-protected (ReadOnly = 1)."
    else
        tool_fail=1
    fi
fi

# Suites that need a removable medium (RMB=1: PreventAllow, StartStopUnit, NoMedia) and tests
# that need more than one logical block per physical block ("LBPPB < 2"): a third serve whose LU
# is removable with 4 KiB physical blocks (Removable = 1, PhysicalBlockSize = 4096); its results
# stand for those specs. ALL or SCSI runs them all; a narrower spec runs what it names.
rm_all=(SCSI.PreventAllow SCSI.StartStopUnit SCSI.NoMedia SCSI.CompareAndWrite.InvalidDataOutSize
    SCSI.WriteSame10.UnmapUnaligned SCSI.WriteSame10.InvalidDataOutSize
    SCSI.WriteSame16.UnmapUnaligned SCSI.WriteSame16.InvalidDataOutSize)
rm_specs=()
for spec in "${specs[@]}"; do
    case "$spec" in
    ALL | SCSI) rm_specs=("${rm_all[@]}") ;;
    SCSI.PreventAllow* | SCSI.StartStopUnit* | SCSI.NoMedia*) rm_specs+=("$spec") ;;
    esac
done
rm_note=
if [ ${#rm_specs[@]} -gt 0 ]; then
    lu_ini 'Removable = 1' 'PhysicalBlockSize = 4096' >"$tmp/rm.ini"
    if run_on_serve storstack-rm "$tmp/rm.ini" "${rm_specs[@]}"; then
        rm_note="${rm_specs[*]} ran against a third \`storstack serve\` whose LU is removable with 4 KiB physical blocks (Removable = 1, PhysicalBlockSize = 4096)."
    else
        tool_fail=1
    fi
fi

# Documented deviations: tests whose expectation contradicts the standard the device follows.
# Each fails for the reason given, which docs/conformance.md explains; it is reported as a
# deviation, not a failure. One that passes is reported too, so the list cannot go stale.
deviations=$(cat <<'DEV'
StartStopUnit.PwrCnd	expects GOOD for every POWER CONDITION 1h-Fh; SBC-4 5.25 table 86 reserves 4h, 6h, 8h, 9h, Ch-Fh (INVALID FIELD IN CDB), and IDLE/STANDBY are optional power conditions this LU does not have
StartStopUnit.NoLoej	expects TEST UNIT READY to be GOOD after START=0; SBC-4 5.25 and 4.20: a stopped LU answers NOT READY, INITIALIZING COMMAND REQUIRED (04h/02h) until started
DEV
)
printf '%s\n' "$deviations" >"$tmp/deviations"
awk -F'\t' -v OFS='\t' 'FNR == NR { why[$1] = $2; next }
    { k = $1 "." $2 }
    k in why && $3 == "FAILED" { $3 = "DEVIATION"; $4 = why[k] }
    k in why && $3 == "passed" { $4 = "listed as a deviation but passed: take it off the list" }
    { print }' "$tmp/deviations" "$tmp/storstack.tests" >"$tmp/classified.tests"
mv "$tmp/classified.tests" "$tmp/storstack.tests"
ndev=$(awk -F'\t' '$3 == "DEVIATION"' "$tmp/storstack.tests" | wc -l)
stale=$(awk -F'\t' '$3 == "passed" && $4 ~ /^listed as a deviation/ { print $1 "." $2 }' "$tmp/storstack.tests")

read -r run passed failed skipped <<<"$(totals "$tmp/storstack.tests")"
skipped=$((skipped - ndev)) # totals counts anything not passed/FAILED as skipped
report() {
    echo "## iscsi-test-cu per family"
    echo
    if [ -n "$tgt_url" ]; then
        echo "| family | storstack run | passed | failed | skipped | tgtd passed | failed | skipped |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    else
        echo "| family | run | passed | failed | skipped |"
        echo "|---|---:|---:|---:|---:|"
    fi
    awk -F'\t' -v tgt="$tgt_url" -v tfile="$tmp/tgtd.tests" '
        BEGIN {
            if (tgt != "") while ((getline line < tfile) > 0) {
                split(line, a, "\t"); k = a[1]
                if (a[3] == "passed") tp[k]++; else if (a[3] == "FAILED") tf[k]++; else ts[k]++
            }
        }
        { k = $1; if (!(k in seen)) { seen[k] = 1; order[n++] = k }
          r[k]++; if ($3 == "passed") p[k]++; else if ($3 == "FAILED") f[k]++; else s[k]++ }
        END {
            for (i = 0; i < n; i++) {
                k = order[i]
                if (tgt != "")
                    printf "| %s | %d | %d | %d | %d | %d | %d | %d |\n", k, r[k], p[k], f[k], s[k], tp[k], tf[k], ts[k]
                else
                    printf "| %s | %d | %d | %d | %d |\n", k, r[k], p[k], f[k], s[k]
            }
        }' "$tmp/storstack.tests"
    echo
    echo "storstack: run $run, passed $passed, failed $failed, skipped $skipped, documented deviations $ndev"
    [ -n "$ro_note" ] && echo && echo "$ro_note"
    [ -n "$rm_note" ] && echo && echo "$rm_note"
    if [ -n "$tgt_url" ]; then
        read -r tr tp tf ts <<<"$(totals "$tmp/tgtd.tests")"
        echo "tgtd (RAM-backed LUN): run $tr, passed $tp, failed $tf, skipped $ts"
    fi
    echo
    echo "## storstack: skipped tests and the reason the suite gave"
    echo
    awk -F'\t' '$3 == "SKIPPED" { printf "- %s.%s: %s\n", $1, $2, $4 }' "$tmp/storstack.tests"
    echo
    echo "## storstack: documented deviations (the suite's expectation contradicts the standard)"
    echo
    awk -F'\t' '$3 == "DEVIATION" { printf "- %s.%s: %s\n", $1, $2, $4 }' "$tmp/storstack.tests"
    for t in $stale; do echo "- $t: listed as a deviation but passed: take it off the list"; done
    echo
    echo "## storstack: failed tests"
    echo
    awk -F'\t' '$3 == "FAILED" { printf "- %s.%s: %s\n", $1, $2, $4 }' "$tmp/storstack.tests"
    if [ -n "$tgt_url" ]; then
        echo
        echo "## tgtd: failed tests"
        echo
        awk -F'\t' '$3 == "FAILED" { printf "- %s.%s: %s\n", $1, $2, $4 }' "$tmp/tgtd.tests"
    fi
}
report >"$tmp/report.md"
cat "$tmp/report.md"
[ -n "$summary" ] && cp "$tmp/report.md" "$summary"
if [ "$run" -eq 0 ]; then
    echo "iscsi-test-cu ran no test"; tail -20 "$tmp/storstack.last.log"
    exit 1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$ndev" -gt 0 ] && echo "($ndev documented deviations, listed above)"
[ $tool_fail = 0 ] || { echo "a libiscsi tool failed against the target"; exit 1; }
[ $allow_fail = 1 ] && exit 0
[ "$failed" -eq 0 ]
