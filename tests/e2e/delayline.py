#!/usr/bin/env python3
"""A delay line for a router namespace (this kernel has no netem): packets the kernel routes
into a TUN device are held for DELAY_MS and written back into it, whence the kernel routes them
on as if they had just arrived. netlab.js sends a router's forwarded traffic through it with
policy routing (packets from the LAN or the WAN go to the TUN; packets from the TUN take the
main table), so each direction is delayed once.

    delayline.py TUN_NAME DELAY_MS

Prints "ready" once the device exists; runs until killed.
"""

import fcntl
import heapq
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def main():
    name, delay = sys.argv[1], float(sys.argv[2]) / 1000.0
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    print("ready", flush=True)
    held = []  # (due, seq, packet): FIFO at equal due times
    seq = 0
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                seq += 1
                heapq.heappush(held, (time.monotonic() + delay, seq, packet))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, packet = heapq.heappop(held)
            try:
                os.write(fd, packet)
            except OSError:
                pass  # a full queue drops, as a link would


if __name__ == "__main__":
    main()
