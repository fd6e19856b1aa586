#!/usr/bin/python3
"""Draws the Payroll test program's icon: a blue rounded square holding a yellow coin with a
dark bar chart, at 16, 32 and 48 pixels (32-bit BMP entries, as legacy programs carry them).
Distinctive colours, so a test can tell it from Wine's default icon on a screenshot or in the
icon cache. Deterministic: the same bytes on every run.

Usage: make-icon.py payroll.ico   (the .ico is checked in; run this after changing it)
"""
import struct
import sys

from PIL import Image, ImageDraw


def draw(size):
    scale = 8  # drawn large, then shrunk: smooth edges at 16 px too
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, s - 1, s - 1], radius=s // 6, fill=(20, 90, 200, 255))
    m = s // 8
    d.ellipse([m, m, s - 1 - m, s - 1 - m], fill=(250, 200, 30, 255))
    # Three bars of a chart on the coin.
    bar = s // 8
    base = s - 1 - 2 * m
    for i, height in enumerate((0.25, 0.45, 0.65)):
        x = s // 2 - 2 * bar + i * int(1.5 * bar)
        d.rectangle([x, base - int(height * s), x + bar, base], fill=(40, 40, 40, 255))
    return img.resize((size, size), Image.LANCZOS)


def dib(img):
    """One icon image as Windows keeps it: a BITMAPINFOHEADER (height doubled: colour plus
    mask), 32-bit BGRA rows bottom-up, then the 1-bit AND mask (rows padded to 4 bytes)."""
    n = img.size[0]
    px = img.load()
    header = struct.pack("<IiiHHIIiiII", 40, n, 2 * n, 1, 32, 0, 0, 0, 0, 0, 0)
    colour = b"".join(bytes((px[x, y][2], px[x, y][1], px[x, y][0], px[x, y][3]))
                      for y in reversed(range(n)) for x in range(n))
    stride = (n + 31) // 32 * 4
    mask = bytearray()
    for y in reversed(range(n)):
        row = bytearray(stride)
        for x in range(n):
            if px[x, y][3] == 0:
                row[x // 8] |= 0x80 >> (x % 8)
        mask += row
    return header + colour + bytes(mask)


def main():
    sizes = [16, 32, 48]
    blobs = [dib(draw(n)) for n in sizes]
    out = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    for n, blob in zip(sizes, blobs):
        out += struct.pack("<BBBBHHII", n, n, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
    with open(sys.argv[1], "wb") as f:
        f.write(out + b"".join(blobs))


if __name__ == "__main__":
    main()
