#!/usr/bin/env bash
# Builds web/vendor/xwing.js, the X-Wing KEM (ML-KEM-768 + X25519) of the web client's sealed
# signaling (docs/protocol.md, version 2), from the npm packages pinned in scripts/web-vendor/
# (package.json and package-lock.json): `npm ci` there, then esbuild bundles
# scripts/web-vendor/xwing-entry.js into one minified ES module. The web client has no bundler
# and the server embeds web/ at compile time, so the built file is committed.
#
#   bash scripts/web-vendor.sh           # rebuild web/vendor/xwing.js
#   bash scripts/web-vendor.sh --check   # rebuild into a temporary file; fail if it differs
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
vendor="$repo/scripts/web-vendor"
out="$repo/web/vendor/xwing.js"

check=0
case "${1:-}" in
  --check) check=1 ;;
  '') ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

(cd "$vendor" && npm ci --no-audit --no-fund --loglevel=error)

version() { node -p "require('$vendor/node_modules/$1/package.json').version"; }
license() { node -p "require('$vendor/node_modules/$1/package.json').license"; }
pq="$(version @noble/post-quantum)"
curves="$(version @noble/curves)"
hashes="$(version @noble/hashes)"
esbuild_version="$(version esbuild)"
for p in @noble/post-quantum @noble/curves @noble/hashes; do
  [ "$(license "$p")" = MIT ] || { echo "web-vendor: $p is not MIT licensed any more" >&2; exit 1; }
done
banner="/* web/vendor/xwing.js: X-Wing (draft-connolly-cfrg-xwing-kem) for roombox's sealed signaling.
 * Built by scripts/web-vendor.sh with esbuild $esbuild_version from @noble/post-quantum $pq,
 * @noble/curves $curves and @noble/hashes $hashes (each MIT License, (c) Paul Miller,
 * paulmillr.com). Do not edit: rebuild. */"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$vendor/node_modules/.bin/esbuild" "$vendor/xwing-entry.js" \
  --bundle --format=esm --minify --target=es2022 --platform=browser \
  --legal-comments=eof --charset=utf8 --log-level=warning \
  --banner:js="$banner" --outfile="$tmp/xwing.js"

if [ "$check" = 1 ]; then
  if ! cmp -s "$tmp/xwing.js" "$out"; then
    echo "web-vendor: web/vendor/xwing.js is not what scripts/web-vendor.sh builds from the pinned packages." >&2
    echo "web-vendor: rebuild it with 'bash scripts/web-vendor.sh' and commit it." >&2
    if [ -f "$out" ]; then
      echo "web-vendor: committed $(wc -c <"$out") bytes, built $(wc -c <"$tmp/xwing.js") bytes" >&2
    else
      echo "web-vendor: web/vendor/xwing.js is missing" >&2
    fi
    exit 1
  fi
  echo "web-vendor: web/vendor/xwing.js matches its build"
else
  mkdir -p "$(dirname "$out")"
  cp "$tmp/xwing.js" "$out"
  echo "web-vendor: wrote web/vendor/xwing.js ($(wc -c <"$out") bytes)"
fi
