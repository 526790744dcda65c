#!/usr/bin/env bash
# The NBD miniport (vminiport with `Backend = nbd`, docs/remote.md) against real NBD servers on
# 127.0.0.1: nbdkit's memory plugin and qemu-nbd over a sparse file. Data written through the
# storstack disk is read back by the server's own tools (nbdcopy) and the other way round, and
# the capabilities the disk derives from the server are checked (WCE from flush, read-only).
# Usage: tests/remote/nbd-miniport.sh [--build DIR]      Exit 77 when a peer is not installed.
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
[ "${1:-}" = --build ] && build=$2
. "$here/lib.sh"
need nbdkit qemu-nbd nbdcopy qemu-img

check_server() { # URI LABEL
    local uri=$1 label=$2 cfg="$tmp/$2.ini"
    nbd_config "$cfg" "$uri"
    echo "== $label: write through storstack, read with nbdcopy"
    "$bin" io --config "$cfg" PhysicalDrive0 write --offset 1M --length 24M --pattern random:11 ||
        die "$label: write through the NBD miniport"
    "$bin" io --config "$cfg" PhysicalDrive0 read --offset 1M --length 24M --file "$tmp/a.bin" ||
        die "$label: read through the NBD miniport"
    nbdcopy "$uri" "$tmp/whole.img" || die "$label: nbdcopy from the server"
    dd if="$tmp/whole.img" of="$tmp/b.bin" bs=1M skip=1 count=24 status=none
    cmp "$tmp/a.bin" "$tmp/b.bin" || die "$label: the server holds other bytes than storstack wrote"
    echo "== $label: a file's bytes through storstack, read with nbdcopy"
    head -c 8M /dev/urandom >"$tmp/c.bin"
    "$bin" io --config "$cfg" PhysicalDrive0 write --offset 40M --length 8M --file "$tmp/c.bin" ||
        die "$label: write a file"
    nbdcopy "$uri" "$tmp/whole.img" || die "$label: nbdcopy"
    dd if="$tmp/whole.img" of="$tmp/d.bin" bs=1M skip=40 count=8 status=none
    cmp "$tmp/c.bin" "$tmp/d.bin" || die "$label: second range differs"
    "$bin" io --config "$cfg" PhysicalDrive0 verify --offset 1M --length 24M --pattern random:11 ||
        die "$label: verify"
    echo "== $label: READ CAPACITY is the export's size"
    "$bin" scsi --config "$cfg" PhysicalDrive0 readcap | grep -q "Device size: $3 bytes" ||
        die "$label: READ CAPACITY does not report the export's $3 bytes"
    rm -f "$tmp/whole.img"
}

port=$(free_port)
bg nbdkit nbdkit -f -i 127.0.0.1 -p "$port" memory 64M
wait_port "$port"
check_server "nbd://127.0.0.1:$port" nbdkit-memory 67108864

truncate -s 96M "$tmp/qemu.img"
port=$(free_port)
bg qemu-nbd qemu-nbd -f raw -b 127.0.0.1 -p "$port" -t --cache=writeback "$tmp/qemu.img"
wait_port "$port"
check_server "nbd://127.0.0.1:$port" qemu-nbd 100663296

echo "== UNMAP is NBD trim, GET LBA STATUS is NBD block status (nbdkit memory)"
port=$(free_port)
bg nbdkit-thin nbdkit -f -i 127.0.0.1 -p "$port" memory 64M
wait_port "$port"
nbd_config "$tmp/thin.ini" "nbd://127.0.0.1:$port"
serve thin --config "$tmp/thin.ini"
"$bin" io --server "$serve_sock" PhysicalDrive0 write --offset 0 --length 16M --pattern 0x77 || die "fill"
# UNMAP (SBC-4 5.30): one descriptor, LBA 4096 (2 MiB), 8192 blocks (4 MiB)
printf '\x00\x16\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x20\x00\x00\x00\x00\x00' >"$tmp/unmap.bin"
"$bin" scsi --server "$serve_sock" PhysicalDrive0 raw 42000000000000001800 --send "$tmp/unmap.bin" ||
    die "UNMAP through the NBD miniport"
nbdinfo --map "nbd://127.0.0.1:$port" >"$tmp/map"
cat "$tmp/map"
grep -Eq '^ +2097152 +4194304 +3 +hole,zero' "$tmp/map" || die "the unmapped range is no hole on the server"
# GET LBA STATUS from LBA 0: mapped for 4096 blocks, then deallocated for 8192
"$bin" scsi --server "$serve_sock" PhysicalDrive0 raw 9e120000000000000000000004000000 --in 1024 \
    --out "$tmp/lbas.bin" || die "GET LBA STATUS"
od -An -tx1 -v "$tmp/lbas.bin" | tr -d ' \n' | cut -c17-80 >"$tmp/lbas.hex"
[ "$(cat "$tmp/lbas.hex")" = "0000000000000000000010000000000000000000000010000000200001000000" ] ||
    { cat "$tmp/lbas.hex"; die "GET LBA STATUS does not describe the server's map"; }
"$bin" io --server "$serve_sock" PhysicalDrive0 verify --offset 2M --length 4M --pattern 0x00 ||
    die "the unmapped range does not read as zeros"
stop "$serve_pid"

echo "== a read-only export is a write-protected disk"
port=$(free_port)
bg nbdkit-ro nbdkit -f -r -i 127.0.0.1 -p "$port" memory 16M
wait_port "$port"
nbd_config "$tmp/ro.ini" "nbd://127.0.0.1:$port"
"$bin" io --config "$tmp/ro.ini" PhysicalDrive0 write --offset 0 --length 4K --pattern 0x5a 2>"$tmp/ro.err" &&
    die "a write to a read-only export succeeded"
cat "$tmp/ro.err"
"$bin" io --config "$tmp/ro.ini" PhysicalDrive0 verify --offset 0 --length 4K --pattern 0x00 ||
    die "read from a read-only export"

echo "== no server: the adapter does not start and says why"
nbd_config "$tmp/none.ini" "nbd://127.0.0.1:$(free_port)" "ConnectTimeoutMs = 2000"
"$bin" tree --config "$tmp/none.ini" >"$tmp/none.out" 2>&1
grep -E "nbd backend nbd://127.0.0.1:[0-9]+: .*(refused|connect)" "$tmp/none.out" ||
    { cat "$tmp/none.out"; die "no message naming the unreachable server"; }
echo "== a unit without a Uri is a named configuration error"
nbd_config "$tmp/nouri.ini" ""
sed -i '/^Uri = $/d' "$tmp/nouri.ini"
"$bin" tree --config "$tmp/nouri.ini" >"$tmp/nouri.out" 2>&1
grep -q 'Target0\\Lun0: Backend nbd needs a Uri' "$tmp/nouri.out" || { cat "$tmp/nouri.out"; die "no message for a missing Uri"; }
echo PASS
