#!/usr/bin/env bash
# Installs the C toolchain pieces the box's crates build with, on Debian bookworm (as root):
# cmake (bundled libopus, AWS-LC), the ALSA headers, pkg-config, a C/C++ compiler, libclang
# (v4l2r's bindgen) and newer V4L2 uapi headers (scripts/fetch-uapi-headers.sh).
# Quick when everything is already there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v c++ >/dev/null || need+=(g++)
[ -e /usr/include/alsa/asoundlib.h ] || need+=(libasound2-dev)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing build packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
bash "$(dirname "$0")/fetch-uapi-headers.sh"
