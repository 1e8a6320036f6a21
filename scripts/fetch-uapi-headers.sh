#!/usr/bin/env bash
# v4l2r generates its V4L2 bindings from videodev2.h and needs a newer one than bookworm's
# 6.1 uapi headers. This fetches linux-libc-dev from bookworm-backports (same mirror as the
# machine's own apt sources, without touching the system's apt state), extracts it into
# .build/uapi and leaves the header where .cargo/config.toml points V4L2R_VIDEODEV2_H_PATH.
# Nothing third-party is committed; quick when the headers are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.build/uapi
[ -e "$dest/include/videodev2.h" ] && exit 0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
uri=$( (grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
        grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
          sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}') |
      grep -v security | head -n1 || true)
[ -n "$uri" ] || { echo "fetch-uapi-headers: no Debian mirror in the apt sources" >&2; exit 1; }
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main" \
  >"$work/sources.list"
apt_opts=(-q -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" download linux-libc-dev >/dev/null)
dpkg-deb -x "$work"/linux-libc-dev_*.deb "$work/x"
rm -rf "$dest" && mkdir -p "$dest"
cp -a "$work/x/usr/include" "$dest/"
# v4l2r's build script watches <dir>/videodev2.h and its wrapper includes <linux/videodev2.h>:
# point it at include/, and give it the file it watches.
ln -s linux/videodev2.h "$dest/include/videodev2.h"
echo "uapi headers: $(dpkg-deb -f "$work"/linux-libc-dev_*.deb Version) in $dest"
