# Sourced (not run) by everything that builds for the Pi with Debian's cross toolchain:
# scripts/cross-arm64.sh and the aarch64 benches (bench/audio, bench/display, bench/e2ee).
# Sets `triple` and `gnu`, fetches the uapi headers, and exports the build environment. Run
# from the repository's root.

triple=aarch64-unknown-linux-gnu
gnu=aarch64-linux-gnu
bash scripts/fetch-uapi-headers.sh # newer videodev2.h, with per-arch asm/ directories
# Debian's toolchain, not rustup's proxies (those come first in PATH on developer machines).
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=$gnu-gcc
# cc/cmake crates: the compilers for the target (host build scripts keep the host's cc).
export CC_aarch64_unknown_linux_gnu=$gnu-gcc CXX_aarch64_unknown_linux_gnu=$gnu-g++
export AR_aarch64_unknown_linux_gnu=$gnu-ar
# pkg-config: only the arm64 .pc files, never the host's.
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/$gnu/pkgconfig:/usr/share/pkgconfig
# v4l2r's bindgen runs clang for the target (it passes --target from cargo's TARGET); the
# fetched uapi headers' aarch64 asm/ directory goes with their linux/videodev2.h.
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="-I$PWD/.build/uapi/include/$gnu"
