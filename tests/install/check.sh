#!/bin/bash
# Installs the built Loom into a fresh prefix and uses it as a user would: the headers, the loom
# program, both libraries (the soname), then tests/install/train.c built outside the tree with
# find_package(Loom) (Loom::loom, Loom::loom_static) and with pkg-config and plain cc (shared, and
# static through Libs.private), each run and required to train.
#   tests/install/check.sh BUILD_DIR WORK_DIR CC
set -u
build=$1
work=$2
cc=$3
here=$(cd "$(dirname "$0")" && pwd)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# run NAME COMMAND...: the command's output kept in WORK_DIR/NAME.log, shown indented when it fails;
# a failure counted, and the status 1
run() {
    local name=$1
    shift
    if "$@" >"$work/$name.log" 2>&1; then
        echo "ok: $name"
    else
        fail "$name (status $?):"
        sed 's/^/    /' "$work/$name.log" | tail -40
        return 1
    fi
}

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
run install cmake --install "$build" --prefix "$prefix" || exit 1
libdir=$(dirname "$(find "$prefix" -name loom.pc -print -quit)")/..
libdir=$(cd "$libdir" && pwd)

# what the prefix holds
for f in include/loom/loom.h include/loom/core.h bin/loom; do
    [ -e "$prefix/$f" ] || fail "the prefix has no $f"
done
[ -f "$libdir/libloom.a" ] || fail "no libloom.a in $libdir"
soname=$(readelf -d "$libdir/libloom.so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
version=$(pkg-config --modversion "$libdir/pkgconfig/loom.pc")
want_soname=libloom.so.$(echo "$version" | awk -F. '$1 == 0 { print $1 "." $2; next } { print $1 }')
[ "$soname" = "$want_soname" ] || fail "libloom.so's soname is '$soname', wanted $want_soname (version $version)"
[ -e "$libdir/$soname" ] || fail "no $soname beside libloom.so"
run loom_info "$prefix/bin/loom" info

# find_package(Loom)
run cmake_configure cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_BUILD_TYPE=Release
run cmake_build cmake --build "$work/cmake"
run cmake_train_shared "$work/cmake/train_shared"
run cmake_train_static "$work/cmake/train_static"

# pkg-config and plain cc: -lloom is the shared library; the static one is named (-l:libloom.a)
# with the rest of what it needs from Libs.private
export PKG_CONFIG_PATH=$libdir/pkgconfig
cflags=$(pkg-config --cflags loom) || fail "pkg-config --cflags loom"
libs=$(pkg-config --libs loom) || fail "pkg-config --libs loom"
static_libs=$(pkg-config --static --libs loom | sed 's/-lloom\b/-l:libloom.a/') || fail "pkg-config --static --libs loom"
# shellcheck disable=SC2086 # the flags are words
run pc_build_shared "$cc" -o "$work/pc_shared" "$here/train.c" $cflags $libs -Wl,-rpath,"$libdir"
# shellcheck disable=SC2086
run pc_build_static "$cc" -o "$work/pc_static" "$here/train.c" $cflags $static_libs
run pc_train_shared "$work/pc_shared"
run pc_train_static "$work/pc_static"
# each program links the library it says it does
for p in cmake/train_shared pc_shared; do
    readelf -d "$work/$p" | grep -q "NEEDED.*\[$soname\]" || fail "$p does not load $soname"
done
for p in cmake/train_static pc_static; do
    if readelf -d "$work/$p" | grep -q "NEEDED.*libloom"; then fail "$p loads libloom.so: not static"; fi
done

if [ $fails -gt 0 ]; then
    echo "$fails failed"
    exit 1
fi
echo "installed Loom: every check passed"
