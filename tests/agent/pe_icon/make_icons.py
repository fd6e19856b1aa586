#!/usr/bin/env python3
"""Writes the icons the PE icon reader's tests build into Windows programs, and what a reader
must decode from each image, with the standard library only (no PIL).

make_icons.py OUTDIR writes:
  app.ico     16 px 4-bit, 32 px 32-bit with alpha, 48 px 8-bit (200 colours), 256 px PNG
  depths.ico  16 px 1-bit, 24 px 24-bit, 32 px 32-bit without alpha (the AND mask decides)
  seed.ico    16 px 4-bit, 24 px PNG: small, for the fuzzer's seed programs
  NAME-SIZE.rgba  the pixels of each image, top row first, 8-bit RGBA; pixels the AND mask
                  hides are (0, 0, 0, 0)
  app-256.png     the 256 px PNG image as it is in app.ico
"""
import struct
import sys
import zlib
from pathlib import Path


def colour(x, y, n):
    """A pattern in which neighbouring pixels differ, so a row or bit-order slip shows."""
    return ((x * 255) // (n - 1), (y * 255) // (n - 1), ((x * 7) ^ (y * 13)) & 0xFF)


def hidden(x, y, n):
    """The AND mask: a disc, corners hidden."""
    c = (n - 1) / 2
    return (x - c) ** 2 + (y - c) ** 2 > (n / 2) ** 2


def palette_of(count):
    return [((i * 37) & 0xFF, (i * 91 + 17) & 0xFF, (i * 13 + 200) & 0xFF) for i in range(count)]


def bitmap(n, bits, colours=0, alpha=True):
    """A BITMAPINFOHEADER icon image and the RGBA a reader must make of it."""
    used = colours if bits <= 8 else 0
    palette = palette_of(colours or (1 << bits)) if bits <= 8 else []
    stride = (n * bits + 31) // 32 * 4
    mask_stride = (n + 31) // 32 * 4
    rows, mask_rows, rgba = [], [], bytearray()
    for y in range(n):  # top-down here; the file stores rows bottom-up
        row, mask = bytearray(stride), bytearray(mask_stride)
        for x in range(n):
            if bits <= 8:
                index = (x * 3 + y * 5) % len(palette)
                rgb = palette[index]
                if bits == 1:
                    row[x >> 3] |= index << (7 - (x & 7))
                elif bits == 4:
                    row[x >> 1] |= index << (0 if x & 1 else 4)
                else:
                    row[x] = index
            else:
                rgb = colour(x, y, n)
                at = x * bits // 8
                row[at:at + 3] = bytes((rgb[2], rgb[1], rgb[0]))
            if bits == 32 and alpha:
                a = (x * 17 + y * 11) & 0xFF if not hidden(x, y, n) else 0
                row[x * 4 + 3] = a
                rgba += bytes(rgb) + bytes((a,))
                if a == 0:
                    mask[x >> 3] |= 0x80 >> (x & 7)
                continue
            if hidden(x, y, n):
                mask[x >> 3] |= 0x80 >> (x & 7)
                rgba += bytes(4)
            else:
                rgba += bytes(rgb) + b"\xff"
        rows.append(bytes(row))
        mask_rows.append(bytes(mask))
    header = struct.pack("<IiiHHIIiiII", 40, n, 2 * n, 1, bits, 0, 0, 0, 0, used, 0)
    data = header + b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
    data += b"".join(reversed(rows)) + b"".join(reversed(mask_rows))
    return data, bytes(rgba)


def png(n):
    """An RGBA PNG image (Sub filter on each row) and its pixels."""
    rgba = bytearray()
    raw = bytearray()
    for y in range(n):
        row = bytearray()
        for x in range(n):
            r, g, b = colour(x, y, n)
            row += bytes((r, g, 0x40, 255 if not hidden(x, y, n) else 0))
        rgba += row
        raw.append(1)
        raw += bytes((row[i] - (row[i - 4] if i >= 4 else 0)) & 0xFF for i in range(len(row)))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    return data, bytes(rgba)


def ico(images):
    """A .ico file of (size, bits, palette colours, image bytes)."""
    out = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    for n, bits, colours, data in images:
        out += struct.pack("<BBBBHHII", n & 0xFF, n & 0xFF, colours if colours < 256 else 0, 0,
                           1, bits, len(data), offset)
        offset += len(data)
    return out + b"".join(data for *_, data in images)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    icons = {
        "app": [(16, 4, 16, True), (32, 32, 0, True), (48, 8, 200, True), (256, "png", 0, True)],
        "depths": [(16, 1, 0, True), (24, 24, 0, True), (32, 32, 0, False)],
        "seed": [(16, 4, 16, True), (24, "png", 0, True)],
    }
    for name, specs in icons.items():
        images = []
        for n, bits, colours, alpha in specs:
            if bits == "png":
                data, rgba = png(n)
                images.append((n, 32, 0, data))
                if name == "app":
                    (out / f"{name}-{n}.png").write_bytes(data)
            else:
                data, rgba = bitmap(n, bits, colours, alpha)
                images.append((n, bits, colours, data))
            (out / f"{name}-{n}.rgba").write_bytes(rgba)
        (out / f"{name}.ico").write_bytes(ico(images))


if __name__ == "__main__":
    main()
