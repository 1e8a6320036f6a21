"""Markdown tables from bench/encode/run.sh's results.tsv (and callgrind.tsv)."""

import csv
import statistics
import sys
from collections import defaultdict

results, callgrind, frames_asked = sys.argv[1], sys.argv[2], int(sys.argv[3])
sweep = sys.argv[4] if len(sys.argv) > 4 else None
rows = list(csv.DictReader(open(results), delimiter="\t"))
by = defaultdict(list)
for r in rows:
    by[(r["input"], r["variant"])].append(r)
inputs = list(dict.fromkeys(r["input"] for r in rows))
variants = list(dict.fromkeys(r["variant"] for r in rows))
order = ["old-paced", "box-paced", "gst-openh264-paced", "old-unpaced", "box-unpaced",
         "gst-openh264", "gst-x264"]
variants.sort(key=lambda v: order.index(v) if v in order else len(order))


def cpu_ms(r):
    # Per source frame: a held (unchanged, not re-encoded) frame counts as a frame shown.
    return (float(r["user_s"]) + float(r["sys_s"])) * 1000 / max(int(r["frames"]), frames_asked)


def spread(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


print(f"CPU is user+sys of the whole process per frame (written, or held: the box's frames "
      f"column counts the ones it coded); median (min-max) over "
      f"{max(int(r['round']) for r in rows)} rounds. Ratio: the variant's CPU per frame / that of "
      f"GStreamer's openh264 with the same pacing (paced variants: gst-openh264-paced; the others: "
      f"gst-openh264) in the same round. Quality from round 1, first {frames_asked} frames, aligned "
      f"by frame number.")
print()
print("| input | variant | CPU ms/frame | ratio to gst openh264 | peak RSS MB | frames | kbit/s | PSNR dB | SSIM |")
print("|---|---|---|---|---|---|---|---|---|")
for inp in inputs:
    gst_of = {
        p: {r["round"]: cpu_ms(r) for r in by[(inp, p)]}
        for p in ("gst-openh264", "gst-openh264-paced")
    }
    for v in variants:
        rs = by[(inp, v)]
        if not rs:
            continue
        cpu = [cpu_ms(r) for r in rs]
        gst = gst_of["gst-openh264-paced" if v.endswith("-paced") else "gst-openh264"]
        ratios = [cpu_ms(r) / gst[r["round"]] for r in rs if r["round"] in gst]
        rss = [int(r["maxrss_kb"]) / 1024 for r in rs]
        first = min(rs, key=lambda r: int(r["round"]))
        fr = int(first["frames"])
        kbps = int(first["bytes"]) * 8 / (frames_asked / 30) / 1000
        ratio = spread(ratios, "{:.2f}") if ratios else "-"
        print(f"| {inp} | {v} | {spread(cpu, '{:.2f}')} | {ratio} | {statistics.median(rss):.0f} "
              f"| {fr} | {kbps:.0f} | {first['psnr']} | {first['ssim']} |")

cg = [line.split("\t") for line in open(callgrind).read().splitlines() if line.strip()]
if cg:
    print()
    print("Instructions (callgrind, whole process, 150 frames of moving-720):")
    print()
    print("| program | instructions | per frame | ratio to gst-openh264 |")
    print("|---|---|---|---|")
    base = {n: int(i) for n, i in cg}.get("gst-openh264")
    for name, ir in cg:
        ir = int(ir)
        ratio = f"{ir / base:.3f}" if base else "-"
        print(f"| {name} | {ir:,} | {ir / 150 / 1e6:.2f} M | {ratio} |")

rows = [line.split("\t") for line in open(sweep).read().splitlines() if line.strip()] if sweep else []
if rows:
    print()
    print("Encoder settings (the box's openh264 build, encode::openh264::tests::settings_sweep): the "
          "encoding thread's CPU time per frame (frames in memory; /proc, 10 ms ticks), median "
          "(min-max) over the rounds; ratio to `medium` (the settings before) of the same round.")
    print()
    print("| input | settings | CPU ms/frame | ratio to medium | frames coded | kbit/s | PSNR dB | SSIM |")
    print("|---|---|---|---|---|---|---|---|")
    sw = defaultdict(list)
    for inp, name, rnd, ticks, written, nbytes, psnr, ssim in rows:
        sw[(inp, name)].append((rnd, int(ticks) * 10 / frames_asked, written, nbytes, psnr, ssim))
    for inp in dict.fromkeys(r[0] for r in rows):
        base = {rnd: ms for rnd, ms, *_ in sw[(inp, "medium")]}
        for name in dict.fromkeys(r[1] for r in rows if r[0] == inp):
            rs = sw[(inp, name)]
            ms = [r[1] for r in rs]
            ratios = [r[1] / base[r[0]] for r in rs if base.get(r[0])]
            _, _, written, nbytes, psnr, ssim = rs[-1]
            kbps = int(nbytes) * 8 / (frames_asked / 30) / 1000
            print(f"| {inp} | {name} | {spread(ms, '{:.2f}')} | {spread(ratios, '{:.2f}') if ratios else '-'} "
                  f"| {written} | {kbps:.0f} | {psnr} | {ssim} |")
