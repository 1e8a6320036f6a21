#!/usr/bin/env python3
"""Writes the EDIDs the box's TC358743 HDMI input presents to the HDMI source.

Each EDID is 256 bytes: an EDID 1.3 base block and a CTA-861 extension with an HDMI
vendor-specific data block. It declares RGB only and no audio (the box takes its sound from
the room's speakerphone, so a laptop should keep playing its own audio), and only the video
modes the CSI-2 link between the bridge and the Pi can carry:

  1080p60.txt  4 CSI-2 lanes (a 4-lane bridge board on a Pi 5 or a Compute Module):
               1080p60 preferred, then 1080p50, 1080p30, 720p60, 720p50, 480p60, 640x480.
  1080p30.txt  2 CSI-2 lanes (every Pi 4, and any board with the 15-pin 2-lane cable):
               1080p30 preferred, then 1080p25, 720p60, 720p50, 480p60, 640x480.
               2 lanes at 972 Mbit/s carry 1080p UYVY at up to 50 frames/s; 60 does not fit.

The output is hex text, 16 bytes a line, the format `v4l2-ctl --set-edid=file=...` reads.
Run with no arguments to rewrite the files beside this script; `--stdout NAME` prints one.
Reproducible: no dates or serial numbers come from the machine.
"""
import sys
from pathlib import Path

# Mode timings from CTA-861: pixel clock (kHz), then active, front porch, sync, back porch
# for each axis; all of these use positive horizontal and vertical sync.
MODES = {
    "1080p60": (148500, (1920, 88, 44, 148), (1080, 4, 5, 36)),
    "1080p50": (148500, (1920, 528, 44, 148), (1080, 4, 5, 36)),
    "1080p30": (74250, (1920, 88, 44, 148), (1080, 4, 5, 36)),
    "720p60": (74250, (1280, 110, 40, 220), (720, 5, 5, 20)),
}
# CTA-861 Video Identification Codes.
VIC = {"1080p60": 16, "1080p50": 31, "1080p30": 34, "1080p25": 33, "720p60": 4, "720p50": 19,
       "480p60": 2, "640x480p60": 1}

PROFILES = {
    "1080p60": {
        "preferred": "1080p60",
        "vics": ["1080p60", "1080p50", "1080p30", "720p60", "720p50", "480p60", "640x480p60"],
        # (min V Hz, max V Hz, min H kHz, max H kHz, max pixel clock MHz)
        "range": (23, 61, 15, 68, 150),
    },
    "1080p30": {
        "preferred": "1080p30",
        "vics": ["1080p30", "1080p25", "720p60", "720p50", "480p60", "640x480p60"],
        "range": (23, 61, 15, 46, 80),
    },
}

NAME = "roombox"
# Three letters packed in five bits each. Not a registered PnP vendor ID on purpose: this
# EDID describes the box, not a display someone made.
VENDOR = "RBX"
PRODUCT = 0x0743
YEAR = 2026
# Image size in mm written into the timing descriptors, and in cm in the base block.
SIZE_MM = (800, 450)


def dtd(mode: str) -> bytes:
    """An 18-byte Detailed Timing Descriptor for one of MODES."""
    khz, (ha, hfp, hs, hbp), (va, vfp, vs, vbp) = MODES[mode]
    hb, vb = hfp + hs + hbp, vfp + vs + vbp
    w, h = SIZE_MM
    return bytes([
        (khz // 10) & 0xFF, (khz // 10) >> 8,
        ha & 0xFF, hb & 0xFF, ((ha >> 8) << 4) | (hb >> 8),
        va & 0xFF, vb & 0xFF, ((va >> 8) << 4) | (vb >> 8),
        hfp & 0xFF, hs & 0xFF, ((vfp & 0xF) << 4) | (vs & 0xF),
        ((hfp >> 8) << 6) | ((hs >> 8) << 4) | ((vfp >> 4) << 2) | (vs >> 4),
        w & 0xFF, h & 0xFF, ((w >> 8) << 4) | (h >> 8),
        0, 0,
        0x1E,  # digital separate sync, +vsync, +hsync, progressive
    ])


def text_descriptor(tag: int, text: str) -> bytes:
    body = text.encode("ascii")[:13]
    if len(body) < 13:
        body += b"\n" + b" " * (12 - len(body))
    return bytes([0, 0, 0, tag, 0]) + body


def range_descriptor(vmin, vmax, hmin, hmax, mhz) -> bytes:
    # Byte 10 = 0: default GTF (EDID 1.3); the rest is the usual line feed and spaces.
    return bytes([0, 0, 0, 0xFD, 0, vmin, vmax, hmin, hmax, mhz // 10, 0, 0x0A]) + b" " * 6


def chromaticity() -> bytes:
    """sRGB primaries and D65 white, as 10-bit fractions."""
    pts = [(0.640, 0.330), (0.300, 0.600), (0.150, 0.060), (0.3127, 0.3290)]
    v = [round(c * 1024) for p in pts for c in p]  # rx ry gx gy bx by wx wy
    lo_rg = ((v[0] & 3) << 6) | ((v[1] & 3) << 4) | ((v[2] & 3) << 2) | (v[3] & 3)
    lo_bw = ((v[4] & 3) << 6) | ((v[5] & 3) << 4) | ((v[6] & 3) << 2) | (v[7] & 3)
    return bytes([lo_rg, lo_bw] + [x >> 2 for x in v])


def with_checksum(block: bytearray) -> bytes:
    assert len(block) == 127, len(block)
    block.append((-sum(block)) & 0xFF)
    return bytes(block)


def base_block(profile: dict) -> bytes:
    b = bytearray(b"\x00\xff\xff\xff\xff\xff\xff\x00")
    packed = sum((ord(c) - ord("A") + 1) << s for c, s in zip(VENDOR, (10, 5, 0)))
    b += packed.to_bytes(2, "big") + PRODUCT.to_bytes(2, "little") + bytes(4)  # no serial
    b += bytes([0, YEAR - 1990])  # week unknown, year
    b += bytes([1, 3])  # EDID 1.3
    b += bytes([0x80, SIZE_MM[0] // 10, SIZE_MM[1] // 10, 120])  # digital; cm; gamma 2.2
    b += bytes([0x0E])  # RGB colour, sRGB, the first timing descriptor is the preferred mode
    b += chromaticity()
    b += bytes([0x20, 0x00, 0x00])  # established timings: 640x480@60 only
    std = [(1280, 720, 60)] + ([(1920, 1080, 60)] if profile["preferred"] == "1080p60" else [])
    for w, h, hz in std:  # standard timings, 16:9
        b += bytes([w // 8 - 31, (3 << 6) | (hz - 60)])
    b += b"\x01\x01" * (8 - len(std))
    second = "720p60"
    b += dtd(profile["preferred"]) + dtd(second)
    b += text_descriptor(0xFC, NAME) + range_descriptor(*profile["range"])
    b += bytes([1])  # one extension block
    return with_checksum(b)


def cta_block(profile: dict) -> bytes:
    # The native mode is the base block's first timing descriptor (header below), so no
    # video descriptor carries the native flag.
    vdb = bytes(VIC[m] for m in profile["vics"])
    blocks = bytes([(2 << 5) | len(vdb)]) + vdb
    # Video capability: RGB quantization range selectable (the source says full or limited
    # in its AVI InfoFrame, which the TC358743 reads), IT and CE formats underscanned.
    blocks += bytes([(7 << 5) | 2, 0x00, 0x4A])
    # HDMI VSDB: IEEE OUI 00-0C-03, physical address 1.0.0.0, no deep colour, 165 MHz TMDS.
    hdmi = bytes([0x03, 0x0C, 0x00, 0x10, 0x00, 0x00, 165 // 5])
    blocks += bytes([(3 << 5) | len(hdmi)]) + hdmi
    # Header: tag, revision 3, where timing descriptors would start (there are none here),
    # then underscan, no basic audio, no YCbCr, one native timing (the base block's first).
    b = bytearray([0x02, 0x03, 4 + len(blocks), 0x81]) + blocks
    b += bytes(127 - len(b))
    return with_checksum(b)


def edid(name: str) -> bytes:
    p = PROFILES[name]
    return base_block(p) + cta_block(p)


def as_hex(data: bytes) -> str:
    return "".join(data[i:i + 16].hex() + "\n" for i in range(0, len(data), 16))


def main(argv):
    if len(argv) == 3 and argv[1] == "--stdout":
        sys.stdout.write(as_hex(edid(argv[2])))
        return 0
    if len(argv) != 1:
        print(f"usage: {argv[0]} [--stdout {'|'.join(PROFILES)}]", file=sys.stderr)
        return 2
    here = Path(__file__).resolve().parent
    for name in PROFILES:
        (here / f"{name}.txt").write_text(as_hex(edid(name)))
        print(f"wrote {here / (name + '.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
