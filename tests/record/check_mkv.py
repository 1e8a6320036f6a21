#!/usr/bin/env python3
"""Checks a recording with an independent reader (ffprobe/ffmpeg): H.264 at the expected size
and frame count, Opus at 48 kHz, the duration, and a tone in the audio (Goertzel per window).

  check_mkv.py FILE --width W --height H --fps F --seconds S --tone HZ [--gap SECONDS]
               [--frames N] [--audio-slack SECONDS]

--frames: the exact number of video frames the recorder reported writing (where the machine
is too slow to keep every frame, e.g. an emulated CPU); without it, about seconds x fps.
--audio-slack: how much shorter the decoded audio may be (samples lost to overruns).
--gap: the audio must go tone -> at least SECONDS of silence -> tone again (a device that
vanished mid-recording and came back). Prints what it measured; exits 1 on any failure."""
import argparse
import json
import math
import struct
import subprocess
import sys

WINDOW = 0.25  # seconds of audio per tone measurement


def ffprobe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_type,codec_name,width,height,sample_rate,channels,nb_read_frames"
         ":format=duration,format_name", "-of", "json", path],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def decode_audio(path):
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-vn", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"],
        check=True, capture_output=True).stdout
    return struct.unpack(f"<{len(raw) // 2}h", raw)


def goertzel(samples, rate, freq):
    """Amplitude of `freq` in `samples` (a sine of amplitude A gives about A / 2)."""
    w = 2 * math.pi * freq / rate
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return math.sqrt(max(s1 * s1 + s2 * s2 - coeff * s1 * s2, 0)) / len(samples)


def tone_windows(samples, rate, freq):
    """Per window: True when `freq` clearly stands out (louder than -40 dBFS and 10x a
    neighbouring frequency), False when the window is silent or holds something else."""
    n = int(rate * WINDOW)
    result = []
    for i in range(0, len(samples) - n + 1, n):
        w = samples[i:i + n]
        at = goertzel(w, rate, freq)
        off = goertzel(w, rate, freq * 1.37)
        result.append(at > 100 and at > 10 * off)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--height", type=int, required=True)
    p.add_argument("--fps", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--tone", type=float, required=True)
    p.add_argument("--gap", type=float, default=0.0)
    p.add_argument("--frames", type=int)
    p.add_argument("--audio-slack", type=float, default=0.3)
    a = p.parse_args()
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    info = ffprobe(a.file)
    fmt = info["format"]
    check("matroska" in fmt["format_name"], f"container {fmt['format_name']}")
    duration = float(fmt["duration"])
    check(abs(duration - a.seconds) <= 0.3, f"duration {duration:.3f} s (want {a.seconds} +- 0.3)")
    video = [s for s in info["streams"] if s["codec_type"] == "video"]
    audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
    check(len(video) == 1 and len(audio) == 1, f"{len(video)} video and {len(audio)} audio streams")
    if video:
        v = video[0]
        check(v["codec_name"] == "h264", f"video codec {v['codec_name']}")
        check((v["width"], v["height"]) == (a.width, a.height), f"video size {v['width']}x{v['height']}")
        frames = int(v.get("nb_read_frames", 0))
        if a.frames is not None:
            check(frames == a.frames, f"{frames} video frames decoded (the recorder wrote {a.frames})")
        else:
            want = a.seconds * a.fps
            check(abs(frames - want) <= max(2, want * 0.03), f"{frames} video frames decoded (want {want:.0f} +- 3 %)")
    if audio:
        s = audio[0]
        check(s["codec_name"] == "opus", f"audio codec {s['codec_name']}")
        check(int(s["sample_rate"]) == 48000, f"audio rate {s['sample_rate']}")
    samples = decode_audio(a.file)
    got = len(samples) / 48000
    check(a.seconds - a.audio_slack <= got <= a.seconds + 0.3, f"{got:.3f} s of audio decoded")
    windows = tone_windows(samples, 48000, a.tone)
    print("tone per %.2f s: %s" % (WINDOW, "".join("#" if t else "." for t in windows)))
    # The first and last window may hold the start-up or the cut; judge the rest.
    inner = windows[1:-1]
    if a.gap <= 0:
        share = sum(inner) / max(len(inner), 1)
        check(share >= 0.9, f"{a.tone:.0f} Hz tone in {share:.0%} of the windows")
    else:
        # tone, then silence of at least `gap`, then tone again
        text = "".join("#" if t else "." for t in inner)
        first_tone = text.find("#")
        gap_start = text.find(".", first_tone) if first_tone >= 0 else -1
        back = text.find("#", gap_start) if gap_start >= 0 else -1
        gap = (back - gap_start) * WINDOW if back >= 0 else 0
        check(first_tone >= 0 and gap_start >= 0 and back >= 0,
              "tone, then a gap, then the tone again")
        check(gap >= a.gap, f"gap of {gap:.2f} s (want >= {a.gap})")
        tail = text[back:] if back >= 0 else ""
        check(len(tail) >= 4 and tail.count("#") / len(tail) >= 0.9,
              f"tone after the gap for {len(tail) * WINDOW:.2f} s")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
