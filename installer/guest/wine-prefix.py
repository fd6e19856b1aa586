#!/usr/bin/env python3
"""Finishes the Wine prefix of the guest image (called by wine-hooks.sh).

Usage: wine-prefix.py TREE PREFIX WINE_LIB APPS_TSV VERSION > TREE/opt/heirloom/wine.json

Replaces each file of the prefix that is identical to one of Wine's own files (its DLLs under
WINE_LIB, /usr/share/wine) by a hard link to it: a new prefix holds copies of all builtin DLLs,
and mke2fs -d keeps hard links, so they are stored once. The linked files are Wine's (root,
0644): the prefix is read-only at run time anyway (overlayfs copies a file up before writing).
Then prints what guest.json records about Wine: version, prefix, and the programs installed.
"""
import hashlib
import json
import os
import sys


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def regular_files(top):
    for d, _, files in os.walk(top):
        for name in files:
            p = os.path.join(d, name)
            if os.path.isfile(p) and not os.path.islink(p):
                yield p


def link_identical(prefix, sources):
    by_size = {}
    for top in sources:
        for p in regular_files(top):
            by_size.setdefault(os.path.getsize(p), []).append(p)
    hashes = {}
    linked = saved = 0
    for p in regular_files(prefix):
        size = os.path.getsize(p)
        if size < 4096 or size not in by_size:
            continue
        h = digest(p)
        for src in by_size[size]:
            if src not in hashes:
                hashes[src] = digest(src)
            if hashes[src] == h:
                tmp = p + ".heirloom-link"
                os.link(src, tmp)
                os.replace(tmp, p)
                linked += 1
                saved += size
                break
    return linked, saved


def windows_programs(tree, prefix, folder):
    top = os.path.join(tree + prefix, "drive_c", "Apps", folder)
    found = []
    for d, dirs, files in os.walk(top):
        dirs.sort()
        rel = os.path.relpath(d, os.path.join(tree + prefix, "drive_c"))
        if rel.count(os.sep) > 3:
            dirs[:] = []
        for name in sorted(files):
            if name.lower().endswith(".exe") and not name.lower().startswith("uninst"):
                found.append("C:\\" + os.path.join(rel, name).replace(os.sep, "\\"))
    return found


def main():
    tree, prefix, wine_lib, apps_tsv, version = sys.argv[1:6]
    linked, saved = link_identical(
        tree + prefix, [tree + wine_lib, os.path.join(tree, "usr/share/wine")])
    print(f"wine-prefix: {linked} files hard-linked to Wine's own, {saved // 2**20} MB saved",
          file=sys.stderr)
    apps = []
    with open(apps_tsv) as f:
        for line in f:
            folder, kind = line.rstrip("\n").split("\t", 1)
            how, _, installer = kind.partition(" ")
            apps.append({"folder": folder,
                         "installed_as": "portable" if how == "portable" else "installer",
                         "installer": None if how == "portable" else
                         {"type": how, "file": installer},
                         "programs": windows_programs(tree, prefix, folder)})
    json.dump({"version": version, "arch": "win32", "prefix": prefix,
               "mounted_at": "/home/user/.wine", "apps": apps}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
