# Sourced by bench/audio/arm64.sh and bench/display/arm64.sh: builds the qemu-user TCG plugin
# (insn_region.c, beside this file) into $work/libinsn_region.so and sets $plugin. Debian ships
# no compiled plugins, so it is built against qemu-plugin.h from Debian's qemu source package,
# fetched with apt-get source into $work without touching the system's apt state.
qver=$(dpkg-query -W -f '${source:Version}' qemu-user)
header=$work/qemu-src/include/qemu/qemu-plugin.h
if [ ! -e "$header" ]; then
  src=$work/apt
  rm -rf "$src" && mkdir -p "$src/lists/partial" "$src/cache/archives/partial"
  uri=$( (grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
          grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}') | grep -v security | head -n1 || true)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm main" \
    >"$src/sources.list"
  apt_opts=(-q -o "Dir::Etc::SourceList=$src/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$src/lists" -o "Dir::Cache=$src/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update >/dev/null
  (cd "$src" && apt-get "${apt_opts[@]}" source --download-only "qemu=$qver" >/dev/null)
  mkdir -p "$work/qemu-src"
  tar -xJf "$src"/qemu_*.orig.tar.xz -C "$work/qemu-src" --strip-components=1 \
    --wildcards '*/include/qemu/qemu-plugin.h'
  rm -rf "$src"
fi
plugin=$work/libinsn_region.so
gcc -O2 -Wall -shared -fPIC -I "$(dirname "$header")" -o "$plugin" \
  "$(dirname "${BASH_SOURCE[0]}")/insn_region.c"
