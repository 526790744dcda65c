#!/usr/bin/env bash
# The nbdkit plugin (build/storstack-nbdkit.so, docs/nbd.md) driven by the NBD tools: a 1 GiB
# sparse image goes in with qemu-img convert and nbdcopy and comes back identical (qemu-img
# compare, cmp), an unaligned write is read-modify-written, and trimmed ranges show as holes in
# nbdinfo --map, both on the default RAM disk and on an iscsiprt disk on thin-provisioned tgtd.
# Usage: tests/remote/nbdkit-plugin.sh [--build DIR]     Exit 77 when a peer is not installed.
here=$(cd "$(dirname "$0")" && pwd)
build="$here/../../build"
[ "${1:-}" = --build ] && build=$2
. "$here/lib.sh"
need nbdkit qemu-img qemu-io nbdcopy nbdinfo
plugin="$build/storstack-nbdkit.so"
[ -f "$plugin" ] || { echo "SKIP: $plugin not built (nbdkit-plugin-dev)"; exit 77; }
# A sanitizer build's plugin loads into the uninstrumented nbdkit only with its runtimes
# preloaded (ASan must come first); nbdkit's own allocations are not ours to leak-check.
nbdkit=(nbdkit)
runtimes=$(ldd "$plugin" | grep -o '/[^ ]*lib[at]san[^ ]*\|/[^ ]*libubsan[^ ]*' | paste -sd: -)
if [ -n "$runtimes" ]; then
    ldd "$plugin" | grep -q libtsan && { echo "SKIP: $plugin is a ThreadSanitizer build"; exit 77; }
    nbdkit=(env LD_PRELOAD="$runtimes" ASAN_OPTIONS=detect_leaks=0 nbdkit)
fi

# the source: a sparse 1 GiB image with data in a few places, the first and last MiB included
truncate -s 1G "$tmp/src.img"
for mib in 0 3 200 511 777 1023; do
    head -c 1M /dev/urandom | dd of="$tmp/src.img" bs=1M seek=$mib conv=notrunc status=none
done

port=$(free_port)
bg nbdkit "${nbdkit[@]}" -f -i 127.0.0.1 -p "$port" "$plugin" device=PhysicalDrive0
wait_port "$port"
uri="nbd://127.0.0.1:$port"
nbdinfo "$uri" >"$tmp/info" || die "nbdinfo"
grep -q "export-size: 1073741824" "$tmp/info" || die "the export is not the 1 GiB default disk"
grep -q "can_multi_conn: true" "$tmp/info" || die "multi-conn not offered"
grep -q "block_size_minimum: 512" "$tmp/info" || die "minimum block size is not the sector"

echo "== qemu-img convert into the plugin"
start=$(date +%s.%N)
# qemu-img zeroes the target first (fast zero: WRITE SAME with UNMAP), then moves the data
qemu-img convert -n -f raw -O raw "$tmp/src.img" "$uri" || die "qemu-img convert"
echo "== nbdcopy out of the plugin"
nbdcopy "$uri" "$tmp/out.img" || die "nbdcopy out"
qemu-img compare -q -f raw -F raw "$tmp/src.img" "$tmp/out.img" || die "nbdcopy read other bytes"
echo "== nbdcopy into the plugin (a second image over the first), qemu-img compare"
for mib in 5 600; do
    head -c 2M /dev/urandom | dd of="$tmp/src.img" bs=1M seek=$mib conv=notrunc status=none
done
nbdcopy "$tmp/src.img" "$uri" || die "nbdcopy in"
qemu-img compare -f raw -F raw "$tmp/src.img" "$uri" || die "compare after nbdcopy"
end=$(date +%s.%N)
echo "1 GiB image in and out twice: $(awk "BEGIN { printf \"%.1f\", $end - $start }") s"
rm -f "$tmp/out.img"

echo "== the map follows the data: holes where the image has none, trims become holes"
nbdinfo --map "$uri" >"$tmp/map0"
grep -Eq '^ +0 +[0-9]+ +0 +data' "$tmp/map0" || die "no data at 0"
grep -Eq ' 3 +hole,zero' "$tmp/map0" || die "a sparse image copied in shows no holes"
qemu-io -f raw -c "discard 0 4M" "$uri" >/dev/null || die "discard"
nbdinfo --map "$uri" | grep -Eq '^ +0 +[0-9]+ +3 +hole,zero' || die "a trimmed range is no hole"

echo "== an unaligned write is read-modify-written in whole sectors"
"$build/tests/remote/nbd_unaligned" "$uri" || die "unaligned requests"

if command -v tgtd >/dev/null && command -v tgtadm >/dev/null; then
    echo "== trim shows as holes in nbdinfo --map (iscsiprt disk on thin-provisioned tgtd)"
    tgtd_start
    iscsi_config "$tmp/tgt.ini" "127.0.0.1:$tgt_port" "$tgt_iqn"
    port=$(free_port)
    bg nbdkit-tgt "${nbdkit[@]}" -f -i 127.0.0.1 -p "$port" "$plugin" config="$tmp/tgt.ini"
    wait_port "$port"
    turi="nbd://127.0.0.1:$port"
    nbdinfo "$turi" | grep -q "can_trim: true" || die "UNMAP is not offered on a thin tgtd LUN"
    qemu-io -f raw -c "write -P 0x11 0 16M" "$turi" >/dev/null || die "fill"
    nbdinfo --map "$turi" >"$tmp/map1"
    qemu-io -f raw -c "discard 4M 8M" "$turi" >/dev/null || die "discard"
    nbdinfo --map "$turi" >"$tmp/map2"
    cat "$tmp/map2"
    grep -Eq '^ +0 +4194304 +0 +data' "$tmp/map2" || die "the first 4 MiB are not data"
    grep -Eq '^ +4194304 +8388608 +3 +hole,zero' "$tmp/map2" || die "the trimmed 8 MiB are not a hole"
    grep -Eq '^ +12582912 +4194304 +0 +data' "$tmp/map2" || die "the data after the hole"
    qemu-io -f raw -c "read -P 0 4M 8M" -c "read -P 0x11 12M 4M" "$turi" | grep -c "read " |
        grep -q 2 || die "trimmed range does not read as zeros, or the rest changed"
    echo "== zero with may-trim is WRITE SAME with UNMAP: a hole"
    qemu-io -f raw -c "write -z -u 12M 4M" "$turi" >/dev/null || die "write -z -u"
    nbdinfo --map "$turi" | grep -Eq '^ +4194304 +[0-9]+ +3 +hole,zero' || die "zeroed range is no hole"
fi
echo PASS
