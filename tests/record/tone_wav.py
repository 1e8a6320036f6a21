#!/usr/bin/env python3
"""Writes a sine tone as a 16-bit WAV: tone_wav.py OUT --hz F --rate R --channels C --seconds S"""
import argparse
import math
import struct
import wave

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--hz", type=float, default=1000)
p.add_argument("--rate", type=int, default=48000)
p.add_argument("--channels", type=int, default=1)
p.add_argument("--seconds", type=float, default=10)
a = p.parse_args()
frames = bytearray()
for n in range(int(a.rate * a.seconds)):
    v = int(8000 * math.sin(2 * math.pi * a.hz * n / a.rate))
    frames += struct.pack("<h", v) * a.channels
with wave.open(a.out, "wb") as w:
    w.setnchannels(a.channels)
    w.setsampwidth(2)
    w.setframerate(a.rate)
    w.writeframes(bytes(frames))
