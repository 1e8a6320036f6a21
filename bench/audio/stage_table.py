"""The stage-cost table (instructions per 10 ms block) from rows "KEY FAR NEAR" of totals over
BLOCKS blocks; stages.sh (callgrind, x86_64) and arm64.sh (qemu plugin, aarch64) share it.

    python3 stage_table.py BLOCKS "hp 123 456" "all 789 1011" ...
"""
import sys

names = {"hp": "high-pass only", "aec": "echo cancellation only", "ns": "noise suppression only",
         "agc": "automatic gain only", "all": "all four"}
blocks = int(sys.argv[1])
rows = [r.split() for r in sys.argv[2:]]
all4 = next(int(f) + int(n) for k, f, n in rows if k == "all")
for k, f, n in rows:
    f, n = int(f), int(n)
    print(f"| {names[k]} | {f / blocks / 1e3:,.0f} k | {n / blocks / 1e3:,.0f} k | {(f + n) / blocks / 1e3:,.0f} k | {(f + n) / all4:.2f} |")
