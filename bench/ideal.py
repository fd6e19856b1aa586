#!/usr/bin/env python3
"""The ideal transfer for an image update, in bytes.

    ideal.py NEW.raw [--seed-image OLD.raw ...] [--seed-dir DIR ...] [--block-size 4096]

Ideal = (number of distinct non-zero 4 KiB blocks of NEW that no seed holds) x 4096, where the
seeds are every 4 KiB block of each seed image and of every regular file under each seed folder
(files cut into 4 KiB blocks from offset 0, the last partial block zero-padded: that is how a
guest file system lays a file out, so a host copy of a guest file matches the guest's blocks).
Zero blocks are free (never sent), and a block that occurs many times in NEW is counted once.

Also reports ideal_zstd_bytes: the same missing blocks, in order of first appearance in NEW,
compressed with zstd (level 3) in independent 64 KiB groups -- the ideal for tools that
compress what they send (Heirloom and casync do; rdiff and zsync do not). libzstd is loaded
with ctypes; without it the field is null.

Streams everything (memory is the set of seed block hashes, ~80 bytes per distinct block) and
skips holes in sparse files. Prints one JSON object on stdout.
"""

import argparse
import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import stat
import sys
import time

READ = 8 << 20  # bytes per read() call


def data_ranges(fd, size):
    """Yields (offset, length) of the data (non-hole) regions of a file."""
    if not hasattr(os, "SEEK_DATA"):
        yield 0, size
        return
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole is left
                return
            if off == 0:  # the file system cannot tell: read it all
                yield 0, size
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size) - start
        off = end


def blocks_of(path, bs, pad_last):
    """Yields each non-zero block of a file, in order (holes skipped)."""
    zero = bytes(bs)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        for start, length in data_ranges(fd, size):
            # Holes are block-aligned on every file system we care about; align down anyway.
            start_al = start - start % bs
            pos, end = start_al, start + length
            while pos < end:
                buf = os.pread(fd, min(READ, end - pos + (-(end - pos)) % bs), pos)
                if not buf:
                    break
                for i in range(0, len(buf), bs):
                    b = buf[i:i + bs]
                    if len(b) < bs:
                        if not pad_last:
                            raise SystemExit(f"{path}: size is not a multiple of {bs}")
                        b = b + bytes(bs - len(b))
                    if b != zero:
                        yield b
                pos += len(buf)
    finally:
        os.close(fd)


class Zstd:
    """Sizes of zstd-compressed groups of blocks, via libzstd and ctypes."""

    def __init__(self, level, group):
        name = ctypes.util.find_library("zstd") or "libzstd.so.1"
        self.lib = ctypes.CDLL(name)
        self.lib.ZSTD_compressBound.restype = ctypes.c_size_t
        self.lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        self.lib.ZSTD_compress.restype = ctypes.c_size_t
        self.lib.ZSTD_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                           ctypes.c_size_t, ctypes.c_int]
        self.lib.ZSTD_isError.restype = ctypes.c_uint
        self.lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        self.level, self.group = level, group
        self.out = ctypes.create_string_buffer(self.lib.ZSTD_compressBound(group))
        self.pending, self.total = [], 0

    def add(self, block):
        self.pending.append(block)
        if len(self.pending) * len(block) >= self.group:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        src = b"".join(self.pending)
        self.pending = []
        n = self.lib.ZSTD_compress(self.out, len(self.out), src, len(src), self.level)
        if self.lib.ZSTD_isError(n):
            raise SystemExit("zstd compression failed")
        self.total += min(n, len(src))  # a sender would ship an incompressible group as is


def digest(b):
    return hashlib.blake2b(b, digest_size=16).digest()


def walk_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(p).st_mode):
                yield p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("new", help="the new raw disk image")
    ap.add_argument("--seed-image", action="append", default=[], help="a raw image the endpoint has")
    ap.add_argument("--seed-dir", action="append", default=[], help="a host folder the endpoint has")
    ap.add_argument("--block-size", type=int, default=4096)
    ap.add_argument("--zstd-level", type=int, default=3)
    ap.add_argument("--zstd-group", type=int, default=64 << 10, help="bytes per compressed group")
    a = ap.parse_args()
    bs = a.block_size
    t0 = time.time()

    seeds = set()
    report = {"new": os.path.abspath(a.new), "block_size": bs, "seeds": []}
    for img in a.seed_image:
        before, n = len(seeds), 0
        for b in blocks_of(img, bs, pad_last=True):
            seeds.add(digest(b))
            n += 1
        report["seeds"].append({"image": os.path.abspath(img), "nonzero_blocks": n,
                                "new_distinct_blocks": len(seeds) - before})
    for d in a.seed_dir:
        before, n, files = len(seeds), 0, 0
        for p in walk_files(d):
            files += 1
            for b in blocks_of(p, bs, pad_last=True):
                seeds.add(digest(b))
                n += 1
        report["seeds"].append({"dir": os.path.abspath(d), "files": files, "nonzero_blocks": n,
                                "new_distinct_blocks": len(seeds) - before})
    t_seeds = time.time() - t0

    try:
        zstd = Zstd(a.zstd_level, a.zstd_group)
    except (OSError, AttributeError):
        zstd = None
    seen = set()
    nonzero = missing_total = 0
    for b in blocks_of(a.new, bs, pad_last=False):
        nonzero += 1
        h = digest(b)
        if h in seeds:
            continue
        missing_total += 1
        if h not in seen:
            seen.add(h)
            if zstd:
                zstd.add(b)
    if zstd:
        zstd.flush()
    size = os.path.getsize(a.new)
    report.update({
        "new_size": size,
        "new_blocks": (size + bs - 1) // bs,
        "new_nonzero_blocks": nonzero,
        "missing_blocks": missing_total,           # non-zero blocks of NEW in no seed, with repeats
        "missing_distinct_blocks": len(seen),      # ... counted once each
        "ideal_bytes": len(seen) * bs,
        "ideal_zstd_bytes": zstd.total if zstd else None,
        "zstd": {"level": a.zstd_level, "group_bytes": a.zstd_group} if zstd else None,
        "seconds": round(time.time() - t0, 1),
        "seconds_seeds": round(t_seeds, 1),
    })
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
