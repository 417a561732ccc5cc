#!/bin/sh
# Installs the Debian packages Loom builds and tests with, when missing. Idempotent; uses sudo when
# not root. The CUDA toolkit is not installed here: Loom builds its CUDA code when nvcc is found.
#   scripts/install-deps.sh          build and test dependencies, the data the tests read
#                                    (dataset-fashion-mnist: /usr/share/datasets/fashion-mnist), and
#                                    gnuplot (gnuplot-nox), which draws `loom train --plot`'s curves
#   scripts/install-deps.sh --dev    also the sanitizer and fuzzing toolchain (clang, valgrind) and
#                                    the API reference's (doxygen, graphviz)
set -eu

pkgs="build-essential cmake pkg-config libck-dev libhwloc-dev check libsubunit-dev libopenmpi-dev openmpi-bin
libopenblas-dev zlib1g-dev curl dataset-fashion-mnist python3 gnuplot-nox"
if [ "${1:-}" = "--dev" ]; then
    pkgs="$pkgs clang libclang-rt-14-dev valgrind doxygen graphviz"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install-deps: need root or sudo to install:$missing" >&2
    exit 1
fi
echo "install-deps: installing$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
