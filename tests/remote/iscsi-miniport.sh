#!/usr/bin/env bash
# The iSCSI initiator miniport (iscsiprt, docs/remote.md) against real targets on 127.0.0.1:
#  - tgtd with a RAM-backed LUN (a file in /dev/shm): the remote LUNs appear as tgtd reports
#    them, data written through storstack is in tgtd's backing file, CHAP logins work and a wrong
#    secret fails the adapter with a message;
#  - a second `storstack serve` (a stack stacked on a stack): data written through the outer
#    stack is read back through the inner one and the other way round, the outer target answers
#    INQUIRY pages exactly as the inner one, and iscsi-test-cu families give the same per-test
#    results against both (pass-through fidelity).
# Usage: tests/remote/iscsi-miniport.sh [--build DIR]    Exit 77 when a peer is not installed.
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
[ "${1:-}" = --build ] && build=$2
. "$here/lib.sh"
need tgtd tgtadm iscsi-inq iscsi-test-cu

echo "== tgtd: the LUNs tgtd reports, data in its backing file"
tgtd_start
iscsi_config "$tmp/tgt.ini" "127.0.0.1:$tgt_port" "$tgt_iqn" "QueueDepth = 16"
"$bin" tree --config "$tmp/tgt.ini" >"$tmp/tree" || { cat "$tmp/tree"; die "no tree"; }
grep -q 'SCSI\\Array&Ven_IET&Prod_Controller.*\\0&0&0&0' "$tmp/tree" || die "no controller LUN 0"
grep -q 'SCSI\\Disk&Ven_IET&Prod_VIRTUAL-DISK.*\\0&0&0&1 \[started\]' "$tmp/tree" ||
    die "LUN 1 is not a started disk"
"$bin" io --config "$tmp/tgt.ini" PhysicalDrive0 write --offset 3M --length 32M --pattern random:5 ||
    die "write through iscsiprt to tgtd"
"$bin" io --config "$tmp/tgt.ini" PhysicalDrive0 read --offset 3M --length 32M --file "$tmp/a.bin" ||
    die "read back"
dd if="$tgt_img" of="$tmp/b.bin" bs=1M skip=3 count=32 status=none
cmp "$tmp/a.bin" "$tmp/b.bin" || die "tgtd's backing file holds other bytes"
echo "== tgtd: sense passes through (READ beyond the last LBA)"
"$bin" scsi --config "$tmp/tgt.ini" PhysicalDrive0 raw 28008000000000000100 \
    --in 512 >"$tmp/eol.out" 2>&1 && die "a READ past the end succeeded"
grep -qi "LOGICAL BLOCK ADDRESS OUT OF RANGE\|21h/00h\|0x21" "$tmp/eol.out" ||
    { cat "$tmp/eol.out"; die "no LBA OUT OF RANGE sense from tgtd"; }

echo "== tgtd: CHAP"
tgtadm -C "$tgt_ctl" --lld iscsi --op new --mode account --user storstack --password s3cret-chap-pw &&
    tgtadm -C "$tgt_ctl" --lld iscsi --op bind --mode account --tid 1 --user storstack ||
    die "tgtadm CHAP account"
iscsi_config "$tmp/chap.ini" "127.0.0.1:$tgt_port" "$tgt_iqn" "ChapUser = storstack" \
    "ChapSecret = s3cret-chap-pw"
"$bin" io --config "$tmp/chap.ini" PhysicalDrive0 verify --offset 3M --length 32M --pattern random:5 ||
    die "CHAP login and read"
iscsi_config "$tmp/badchap.ini" "127.0.0.1:$tgt_port" "$tgt_iqn" "ChapUser = storstack" \
    "ChapSecret = wrong-secret-here" "ConnectTimeoutMs = 3000"
"$bin" tree --config "$tmp/badchap.ini" >"$tmp/badchap.out" 2>&1
grep -q "cannot log in to $tgt_iqn at 127.0.0.1:$tgt_port" "$tmp/badchap.out" ||
    { cat "$tmp/badchap.out"; die "a wrong CHAP secret did not fail the adapter with a message"; }
iscsi_config "$tmp/noport.ini" "127.0.0.1:$(free_port)" "$tgt_iqn" "ConnectTimeoutMs = 2000"
"$bin" tree --config "$tmp/noport.ini" >"$tmp/noport.out" 2>&1
grep -q "cannot log in" "$tmp/noport.out" || { cat "$tmp/noport.out"; die "no message without a target"; }
echo "== configuration errors are named"
badcfg() { # EXPECTED-MESSAGE Device-Parameters-lines...
    local want=$1
    shift
    {
        echo '[Enum\Root\ISCSIPRT\0000]'
        echo 'HardwareID = multi:ROOT\ISCSIPRT'
        echo '[Enum\Root\ISCSIPRT\0000\Device Parameters]'
        for l in "$@"; do echo "$l"; done
    } >"$tmp/bad.ini"
    "$bin" tree --config "$tmp/bad.ini" >"$tmp/bad.out" 2>&1
    grep -q "$want" "$tmp/bad.out" || { cat "$tmp/bad.out"; die "no message '$want' for: $*"; }
}
badcfg "Portal (HOST\[:PORT\]) and TargetName (the IQN) are required" "TargetName = $tgt_iqn"
badcfg "ChapUser needs a ChapSecret" "Portal = 127.0.0.1:$tgt_port" "TargetName = $tgt_iqn" "ChapUser = x"
badcfg "QueueDepth must be 1..254" "Portal = 127.0.0.1:$tgt_port" "TargetName = $tgt_iqn" "QueueDepth = 0"
badcfg "QueueDepth: 'many' is not a number" "Portal = 127.0.0.1:$tgt_port" "TargetName = $tgt_iqn" "QueueDepth = many"
stop "$tgtd_pid" KILL # tgtd ignores SIGTERM while it has targets

echo "== a stack on a stack: outer iscsiprt -> inner storstack serve"
serve inner
inner_sock=$serve_sock inner_port=$serve_port inner_iqn=$serve_iqn
iscsi_config "$tmp/outer.ini" "127.0.0.1:$inner_port" "$inner_iqn"
serve outer --config "$tmp/outer.ini"
outer_sock=$serve_sock outer_port=$serve_port outer_iqn=$serve_iqn
"$bin" io --server "$outer_sock" PhysicalDrive0 write --offset 0 --length 16M --pattern lba:77 ||
    die "write through the outer stack"
"$bin" io --server "$inner_sock" PhysicalDrive0 verify --offset 0 --length 16M --pattern lba:77 ||
    die "the inner stack does not hold what the outer wrote"
"$bin" io --server "$inner_sock" PhysicalDrive0 write --offset 64M --length 8M --pattern random:3 ||
    die "write through the inner stack"
"$bin" io --server "$outer_sock" PhysicalDrive0 verify --offset 64M --length 8M --pattern random:3 ||
    die "the outer stack does not read what the inner wrote"

echo "== pass-through fidelity: INQUIRY pages of the outer target are the inner's"
inner_url="iscsi://127.0.0.1:$inner_port/$inner_iqn/0"
outer_url="iscsi://127.0.0.1:$outer_port/$outer_iqn/0"
for page in std 0x00 0x80 0x83 0xb0; do
    if [ $page = std ]; then a=(); else a=(-e 1 -c "$page"); fi
    iscsi-inq "${a[@]}" "$inner_url" >"$tmp/inq.inner" 2>&1
    iscsi-inq "${a[@]}" "$outer_url" >"$tmp/inq.outer" 2>&1
    diff "$tmp/inq.inner" "$tmp/inq.outer" || die "INQUIRY $page differs between inner and outer"
done

echo "== pass-through fidelity: iscsi-test-cu SCSI families, inner vs outer, test by test"
families=(SCSI.Inquiry SCSI.TestUnitReady SCSI.ReadCapacity10 SCSI.ReadCapacity16 SCSI.Read10
    SCSI.Read16 SCSI.Write10 SCSI.Write16 SCSI.Verify10 SCSI.ModeSense6
    SCSI.ReportSupportedOpcodes SCSI.StartStopUnit SCSI.Prefetch10 SCSI.Unmap SCSI.WriteSame16
    SCSI.WriteSame10 SCSI.GetLBAStatus SCSI.CompareAndWrite SCSI.WriteVerify10 SCSI.OrWrite
    SCSI.ExtendedCopy SCSI.PrinReadKeys SCSI.ProutRegister iSCSI.iSCSIResiduals)
results() { # URL OUT: one line per test, "Suite.Test passed|FAILED|skipped"
    for f in "${families[@]}"; do
        timeout 300 iscsi-test-cu -d --test="$f" "$1" 2>&1 | awk '
            function flush() { if (name != "") print suite "." name, (body ~ /FAILED/ ? "FAILED" : skip ? "skipped" : "passed"); name = "" }
            /^Suite: / { flush(); suite = $2; next }
            /^Run Summary/ { flush(); next }
            /^  Test: / { flush(); name = $2; body = $0; skip = 0; next }
            name != "" { body = body "\n" $0 }
            name != "" && /\[SKIPPED\]/ && !/PERSISTENT RESERVE IN is not implemented/ { skip = 1 }
            END { flush() }'
    done >"$2"
}
results "$inner_url" "$tmp/cu.inner"
results "$outer_url" "$tmp/cu.outer"
[ -s "$tmp/cu.inner" ] || die "iscsi-test-cu ran nothing"
echo "inner: $(grep -c ' passed' "$tmp/cu.inner") passed, $(grep -c ' FAILED' "$tmp/cu.inner") failed, $(grep -c ' skipped' "$tmp/cu.inner") skipped"
echo "outer: $(grep -c ' passed' "$tmp/cu.outer") passed, $(grep -c ' FAILED' "$tmp/cu.outer") failed, $(grep -c ' skipped' "$tmp/cu.outer") skipped"
diff "$tmp/cu.inner" "$tmp/cu.outer" || die "iscsi-test-cu results differ between inner and outer"
echo PASS
