#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing storstack need, when missing.
# Usage: scripts/install-deps.sh [build|test|bench]   (each set includes the ones before it)
set -euo pipefail
set_name=${1:-build}
# libnbd-dev, libiscsi-dev, nbdkit-plugin-dev: the remote miniports and the nbdkit plugin
build_pkgs=(gcc make cmake pkg-config liburing-dev libinih-dev libssl-dev libnbd-dev libiscsi-dev
    nbdkit-plugin-dev)
# nbdkit, qemu-utils, libnbd-bin, tgt: the peers of tests/remote
test_pkgs=(libcmocka-dev clang libclang-rt-dev libiscsi-bin xorriso qemu-utils qemu-block-extra nbdkit
    libnbd-bin tgt)
# valgrind: instructions/IO (callgrind); gnuplot-nox: the scaling plot; linux-perf: the profiles
# of the report. bench/run.sh's peers
# (tgt, nbdkit, qemu-utils, libnbd-bin, libiscsi-bin) and libiscsi-dev come from the sets above.
bench_pkgs=(fio jq gcc valgrind gnuplot-nox linux-perf)
want=("${build_pkgs[@]}")
case "$set_name" in
build) ;;
test) want+=("${test_pkgs[@]}") ;;
bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "install-deps: unknown set '$set_name' (build, test or bench)" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
