#!/usr/bin/env bash
# Install into a temporary prefix, then build the README example against it
# twice: with pkg-config and with find_package(jwtkit).
# Usage: test_install.sh BUILD_DIR EXAMPLE_C
set -euo pipefail
build=$1
example=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null

# pkg-config (the .pc file names the prefix it was installed to)
export PKG_CONFIG_PATH=$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig
cc "$example" $(pkg-config --cflags --libs jwtkit) -Wl,-rpath,"$tmp/prefix/lib" -o "$tmp/ex-pc"
out=$("$tmp/ex-pc")
[ "$out" = "verified, sub=alice" ] || { echo "FAIL: pkg-config build printed: $out"; exit 1; }

# CMake package
mkdir "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(use_jwtkit C)
find_package(jwtkit REQUIRED)
add_executable(ex "$example")
target_link_libraries(ex PRIVATE jwtkit::jwtkit)
CM
cmake -S "$tmp/proj" -B "$tmp/proj/b" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/proj/b" >/dev/null
out=$(LD_LIBRARY_PATH=$tmp/prefix/lib "$tmp/proj/b/ex")
[ "$out" = "verified, sub=alice" ] || { echo "FAIL: find_package build printed: $out"; exit 1; }
echo "install: pkg-config and find_package(jwtkit) builds of the README example run"
