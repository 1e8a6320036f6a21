#!/usr/bin/env python3
"""Checks the EDIDs in board/edid/ with a decoder of its own (it shares no code with
make-edid.py): size, header, both checksums, the preferred Detailed Timing Descriptor against
the CTA-861 timing its file name promises, and that every advertised mode fits the CSI-2 link
the file is meant for. Also checks that make-edid.py still writes exactly the committed files.
Usage: python3 tests/board/check_edid.py
"""
import subprocess
import sys
import unittest
from pathlib import Path

EDID_DIR = Path(__file__).resolve().parents[2] / "board" / "edid"

# What each file must describe: preferred mode (w, h, pixel clock Hz, h total, v total, Hz)
# and the CSI-2 lanes it is for. 972 Mbit/s per lane (the Pi overlays' default link
# frequency, 486 MHz DDR); UYVY is 16 bits per pixel and only active pixels cross the link.
EXPECT = {
    "1080p60.txt": dict(mode=(1920, 1080, 148_500_000, 2200, 1125, 60), lanes=4),
    "1080p30.txt": dict(mode=(1920, 1080, 74_250_000, 2200, 1125, 30), lanes=2),
}
LANE_BPS = 972_000_000
# CTA-861 VIC -> (width, height, frames per second) for the codes these files may use.
VICS = {1: (640, 480, 60), 2: (720, 480, 60), 4: (1280, 720, 60), 16: (1920, 1080, 60),
        19: (1280, 720, 50), 31: (1920, 1080, 50), 33: (1920, 1080, 25), 34: (1920, 1080, 30)}


def read_hex(path: Path) -> bytes:
    return bytes.fromhex("".join(path.read_text().split()))


def decode_dtd(d: bytes) -> dict:
    return dict(
        clock_hz=int.from_bytes(d[0:2], "little") * 10_000,
        h_active=d[2] | (d[4] >> 4) << 8,
        h_blank=d[3] | (d[4] & 0xF) << 8,
        v_active=d[5] | (d[7] >> 4) << 8,
        v_blank=d[6] | (d[7] & 0xF) << 8,
        h_front=d[8] | (d[11] >> 6) << 8,
        h_sync=d[9] | ((d[11] >> 4) & 3) << 8,
        v_front=(d[10] >> 4) | ((d[11] >> 2) & 3) << 4,
        v_sync=(d[10] & 0xF) | (d[11] & 3) << 4,
        flags=d[17],
    )


def data_blocks(ext: bytes):
    """(tag, payload) of each data block of a CTA-861 extension."""
    i, end = 4, ext[2]
    while i < end:
        tag, n = ext[i] >> 5, ext[i] & 0x1F
        yield tag, ext[i + 1:i + 1 + n]
        i += 1 + n
    assert i == end, "data blocks overrun the timing descriptor offset"


class EdidFiles(unittest.TestCase):
    def test_every_file_is_expected(self):
        self.assertEqual(sorted(p.name for p in EDID_DIR.glob("*.txt")), sorted(EXPECT))

    def test_structure_and_checksums(self):
        for name in EXPECT:
            with self.subTest(name):
                e = read_hex(EDID_DIR / name)
                self.assertEqual(len(e), 256)
                self.assertEqual(e[:8], bytes.fromhex("00ffffffffffff00"))
                self.assertEqual(e[126], 1, "extension count")
                self.assertEqual(sum(e[:128]) % 256, 0, "base block checksum")
                self.assertEqual(e[128], 0x02, "CTA-861 extension tag")
                self.assertEqual(sum(e[128:]) % 256, 0, "extension checksum")
                self.assertEqual(e[0x18] & 0x02, 0x02, "first DTD must be the preferred mode")

    def test_preferred_timing(self):
        for name, want in EXPECT.items():
            with self.subTest(name):
                t = decode_dtd(read_hex(EDID_DIR / name)[54:72])
                w, h, clock, htot, vtot, hz = want["mode"]
                self.assertEqual((t["h_active"], t["v_active"]), (w, h))
                self.assertEqual(t["clock_hz"], clock)
                self.assertEqual(t["h_active"] + t["h_blank"], htot)
                self.assertEqual(t["v_active"] + t["v_blank"], vtot)
                self.assertEqual(clock / (htot * vtot), hz)
                # CTA-861 1080p: front porch 88 (528 at 50 Hz), sync 44 / 4, 5 lines.
                self.assertEqual((t["h_front"], t["h_sync"]), (88, 44))
                self.assertEqual((t["v_front"], t["v_sync"]), (4, 5))
                self.assertEqual(t["flags"], 0x1E, "progressive, digital separate, +H +V sync")

    def test_all_descriptors_are_valid(self):
        for name in EXPECT:
            e = read_hex(EDID_DIR / name)
            for off in (54, 72, 90, 108):
                d = e[off:off + 18]
                with self.subTest(name, offset=off):
                    if d[0] or d[1]:  # a timing: blanking and sync must fit
                        t = decode_dtd(d)
                        self.assertLess(t["h_front"] + t["h_sync"], t["h_blank"])
                        self.assertLess(t["v_front"] + t["v_sync"], t["v_blank"])
                    else:
                        self.assertIn(d[3], (0xFC, 0xFD), "name or range limits")

    def test_modes_fit_the_csi2_link(self):
        for name, want in EXPECT.items():
            with self.subTest(name):
                ext = read_hex(EDID_DIR / name)[128:]
                vdb = [p for tag, p in data_blocks(ext) if tag == 2]
                self.assertEqual(len(vdb), 1, "one video data block")
                budget = want["lanes"] * LANE_BPS
                for vic in vdb[0]:
                    w, h, fps = VICS[vic & 0x7F]
                    self.assertLessEqual(w * h * fps * 16, budget, f"VIC {vic}")
                w, h, _, _, _, hz = want["mode"]
                self.assertLessEqual(w * h * hz * 16, budget, "preferred mode")

    def test_hdmi_sink_without_audio(self):
        for name in EXPECT:
            with self.subTest(name):
                ext = read_hex(EDID_DIR / name)[128:]
                oui = [p[:3] for tag, p in data_blocks(ext) if tag == 3]
                self.assertIn(bytes([0x03, 0x0C, 0x00]), oui, "HDMI vendor block")
                self.assertFalse(any(tag == 1 for tag, _ in data_blocks(ext)), "audio block")
                self.assertEqual(ext[3] & 0x40, 0, "basic audio bit")

    def test_generator_reproduces_the_files(self):
        for name in EXPECT:
            with self.subTest(name):
                out = subprocess.run(
                    [sys.executable, str(EDID_DIR / "make-edid.py"), "--stdout", name[:-4]],
                    check=True, capture_output=True, text=True).stdout
                self.assertEqual(out, (EDID_DIR / name).read_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
