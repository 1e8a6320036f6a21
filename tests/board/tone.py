#!/usr/bin/env python3
"""A test tone for the board/asound.conf check (tests/vm/cases/60-board-files.sh).

  tone.py write FILE HZ   1 s of a sine at HZ, 48 kHz mono 16-bit
  tone.py check FILE HZ   FILE is 48 kHz mono and its loudest 100 ms carries a tone at HZ
                          (within 2 %, counted by zero crossings), well above silence
"""
import math
import struct
import sys
import wave

RATE = 48000


def write(path, hz):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(
            struct.pack("<h", round(12000 * math.sin(2 * math.pi * hz * i / RATE)))
            for i in range(RATE)))


def check(path, hz):
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, RATE, 2), \
            f"{path}: not 48 kHz mono 16-bit"
        data = w.readframes(w.getnframes())
    s = struct.unpack(f"<{len(data) // 2}h", data)
    win = RATE // 10
    best = max(range(0, len(s) - win, win),
               key=lambda i: sum(x * x for x in s[i:i + win]))
    part = s[best:best + win]
    rms = math.sqrt(sum(x * x for x in part) / win)
    crossings = sum(1 for a, b in zip(part, part[1:]) if (a < 0) != (b < 0))
    found = crossings / 2 / (win / RATE)
    print(f"{path}: loudest 100 ms has RMS {rms:.0f} and a tone at {found:.0f} Hz")
    assert rms > 3000, "too quiet: the tone did not arrive"
    assert abs(found - hz) < hz * 0.02, f"expected {hz} Hz"


if __name__ == "__main__":
    cmd, path, hz = sys.argv[1], sys.argv[2], float(sys.argv[3])
    {"write": write, "check": check}[cmd](path, hz)
