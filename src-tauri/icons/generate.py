#!/usr/bin/env python3
"""Generate Vigil's placeholder app icons (RGBA PNG) without any dependencies.

Draws a rounded-square slate background with a teal "eye" (ring and pupil).
Run from anywhere: python3 src-tauri/icons/generate.py
"""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

BG = (15, 23, 42)  # slate-900
RING = (45, 212, 191)  # teal-400
PUPIL = (240, 253, 250)  # teal-50


def pixel(x: float, y: float, size: int) -> tuple:
    """Colour of the pixel whose centre is (x, y) on a size x size canvas."""
    u = (x + 0.5) / size * 2 - 1
    v = (y + 0.5) / size * 2 - 1
    # Rounded-square mask (superellipse).
    if abs(u) ** 5 + abs(v) ** 5 > 1:
        return (0, 0, 0, 0)
    r = math.hypot(u, v)
    if r < 0.22:
        return PUPIL + (255,)
    if 0.42 < r < 0.62:
        return RING + (255,)
    return BG + (255,)


def png(size: int) -> bytes:
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            rows.extend(pixel(x, y, size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    for name, size in (("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(png(size))


if __name__ == "__main__":
    main()
