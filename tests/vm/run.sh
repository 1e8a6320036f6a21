#!/usr/bin/env bash
# Runs a command inside a VM with real kernel devices (vivid, snd-aloop, vicodec, bochs) and exits
# with its status. The guest sees this machine's root filesystem read-only and the working tree
# read-write, so the command uses the same binaries, libraries and paths as here.
#
#   tests/vm/run.sh [--mem MB] [--timeout SECONDS] [--modprobe "MODULE OPTIONS"]... -- COMMAND...
#
# Each --modprobe replaces the default module list (see DEFAULT_MODULES). The command runs under
# bash, as root, from the current directory (which must be inside the working tree), with
# VM=1 in its environment. Output is the guest's console (the command's stdout and stderr).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tree=$(cd "$here/../.." && pwd)
# vivid: one capture node with a webcam input (0) and an HDMI input (1); the loopback card;
# the FWHT codec; the KMS driver of qemu's standard VGA (the HDMI-out's stand-in).
DEFAULT_MODULES=("vivid n_devs=1 node_types=0x1 num_inputs=2 input_types=0xc" "snd-aloop" "vicodec" "bochs")

mem=1024 timeout=600 modules=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --modprobe) modules+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--mem MB] [--timeout S] [--modprobe 'MOD OPTS']... -- COMMAND..." >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "$0: no command given" >&2; exit 2; }
[ ${#modules[@]} -gt 0 ] || modules=("${DEFAULT_MODULES[@]}")
case "$PWD/" in "$tree"/*) ;; *) echo "$0: run me from inside $tree" >&2; exit 2 ;; esac

bash "$here/build.sh"
run=$(mktemp -d "$tree/target/vm/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
printf '%s\n' "${modules[@]}" >"$run/modules.txt"
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root VM=1'
  printf 'cd %q || exit 97\n' "$PWD"
  printf '%q ' "$@"
  echo
} >"$run/cmd.sh"

status=0
timeout --foreground "$timeout" qemu-system-x86_64 -accel tcg -m "$mem" -smp 2 -nographic \
  -no-reboot -monitor none -serial stdio -nic none \
  -kernel "$tree/target/vm/vmlinuz" -initrd "$tree/target/vm/initrd.gz" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$tree,mount_tag=tree,security_model=none,multidevs=remap" \
  -append "console=ttyS0 quiet panic=-1 roombox.tree=$tree roombox.run=$run" </dev/null ||
  status=$?
if [ "$status" -eq 124 ]; then
  echo "vm: timed out after ${timeout}s" >&2
  exit 124
fi
[ -s "$run/status" ] || { echo "vm: the guest ended without a status (qemu: $status)" >&2; exit 1; }
exit "$(cat "$run/status")"
