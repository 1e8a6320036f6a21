#!/usr/bin/env python3
"""Checks a recording of vivid's HDMI input whose DV timings changed and whose signal went away
mid-recording, with an independent decoder (ffmpeg's): every frame decodes; the picture sizes
come in the order given (e.g. 640x480 then 720x480); while the signal was away the frames are
the dark "no signal" slate (mean luma far below the colour bars') and the bars come back after.

  check_hdmi_mkv.py FILE --sizes 640x480,720x480 --frames N

Prints what it measured; exits 1 on any failure."""
import argparse
import subprocess
import sys


def probe(args):
    return subprocess.run(["ffprobe", "-v", "error"] + args + ["-of", "csv=p=0"],
                          check=True, capture_output=True, text=True).stdout.split()


def frames(path):
    """(width, height, mean luma) of every decoded video frame, in order. Sizes come from the
    decoder itself; the luma from a filter graph (which scales every frame to the first size,
    so it cannot report sizes)."""
    sizes = [tuple(int(v) for v in line.split(",")[:2]) for line in probe(
        ["-select_streams", "v", "-show_entries", "frame=width,height", path])]
    lumas = [float(line.split(",")[-1]) for line in probe(
        ["-f", "lavfi", f"movie={path},signalstats",
         "-show_entries", "frame_tags=lavfi.signalstats.YAVG"])]
    if len(sizes) != len(lumas):
        print(f"FAIL: {len(sizes)} frames decoded but {len(lumas)} measured")
        sys.exit(1)
    return [(w, h, y) for (w, h), y in zip(sizes, lumas)]


def runs(values):
    """Consecutive equal values collapsed: [a, a, b, a] -> [a, b, a]."""
    out = []
    for v in values:
        if not out or out[-1] != v:
            out.append(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--frames", type=int, required=True)
    a = ap.parse_args()
    fs = frames(a.file)
    sizes = runs([f"{w}x{h}" for w, h, _ in fs])
    # Slate: background #121620 is luma ~22; vivid's 75% colour bars average well above 60.
    kinds = runs(["slate" if y < 40 else "picture" for _, _, y in fs])
    print(f"decoded {len(fs)} frames (recorder wrote {a.frames}); sizes {sizes}; {kinds}")
    ok = True
    if len(fs) != a.frames:
        print("FAIL: decoded frame count differs from what the recorder wrote"); ok = False
    if sizes != a.sizes.split(","):
        print(f"FAIL: sizes {sizes}, expected {a.sizes}"); ok = False
    if kinds != ["picture", "slate", "picture"]:
        print("FAIL: expected picture, then the no-signal slate, then the picture again"); ok = False
    sys.exit(0 if ok else 1)


main()
