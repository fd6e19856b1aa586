#!/usr/bin/env python3
"""Content generation for bench/make-image-pair.sh.

Builds the file tree of image v1 from a deterministic selection of real files under /usr plus
generated files, then derives v2 as a software update would: some files rewritten (text files
get altered and inserted lines, binaries get patched regions, shifted tails or appended data),
some removed, tens of MB of new files added. Everything is driven by fixed seeds; the same
machine (the same /usr) always yields the same pair.

Subcommands (called by make-image-pair.sh, not meant to be used by hand):
  tree    TREE --budget BYTES --reserve-out FILE          select+copy /usr files, generate files
  update  TREE WORK --new-bytes BYTES --reserve FILE      write changed/new host files, the debugfs
                                                          command file and the v2 file list
  seed    WORK SEEDDIR --fraction F                       build the Trim Transfer seed folder
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import stat
import sys

FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z: generated and copied files all get this mtime
USR_TOPS = ["bin", "sbin", "lib", "libexec", "share", "include"]
MAX_FILE = 48 << 20  # skip huge single files so no one file dominates the image
GENERATED_FRACTION = 0.15  # of the v1 content budget
SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+/@,=:")


def path_key(seed, path):
    return hashlib.blake2b(f"{seed}:{path}".encode(), digest_size=8).digest()


def safe_path(rel):
    # debugfs command files split on white space and treat quotes specially: keep paths plain.
    return all(c in SAFE_CHARS for c in rel) and len(rel) < 200


def candidates():
    out = []
    for top in USR_TOPS:
        base = os.path.join("/usr", top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            if "/usr/share/package-lists" in dirpath:
                continue
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                rel = p[1:]  # usr/...
                if not safe_path(rel):
                    continue
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
                    continue
                if not os.access(p, os.R_OK):
                    continue
                out.append((path_key("select-v1", rel), rel, st.st_size, st.st_mode & 0o777))
    out.sort()
    return out


def copy_file(src, dst, mode=0o644):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst)
    os.chmod(dst, mode)
    os.utime(dst, (FIXED_MTIME, FIXED_MTIME))


# ---- generated content ---------------------------------------------------------------------

WORDS = (
    "account address amount application archive balance batch branch build cache client "
    "config connection customer database default device document employee error export "
    "field file filter format group handler import index invoice item journal ledger "
    "license line local manager message module network order payment payroll period "
    "policy printer process queue record region report request result schedule server "
    "service session setting status storage supplier system table task template total "
    "transaction update upload user value vendor version warehouse window workspace"
).split()
LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
HOSTS = [f"branch{n:02d}-ws{m:03d}" for n in range(8) for m in range(12)]


def gen_log(rng, size):
    parts, n, t = [], 0, 1700000000 + rng.randrange(10**6)
    while n < size:
        t += rng.randrange(0, 40)
        w = rng.choices(WORDS, k=rng.randrange(3, 9))
        line = (f"2024-{1 + t % 12:02d}-{1 + t % 28:02d}T{t % 24:02d}:{t % 60:02d}:{t * 7 % 60:02d}."
                f"{t % 1000:03d}Z {rng.choice(HOSTS)} app[{rng.randrange(100, 32000)}]: "
                f"{rng.choice(LEVELS)} {' '.join(w)} id={rng.getrandbits(48):012x} "
                f"took={rng.randrange(1, 5000)}ms\n")
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:size]


def gen_csv(rng, size):
    parts, n, row = ["id;date;customer;item;quantity;unit_price;total;status\n"], 0, 0
    while n < size:
        row += 1
        q, p = rng.randrange(1, 500), rng.randrange(100, 99999)
        line = (f"{row};2023-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d};"
                f"C{rng.randrange(10**5):05d};{rng.choice(WORDS)}-{rng.randrange(1000)};{q};"
                f"{p / 100:.2f};{q * p / 100:.2f};{rng.choice(['open', 'paid', 'void'])}\n")
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()[:size]


def gen_db(rng, size):
    # 4 KiB pages of fixed-layout records: partly structured, partly random (hashes, blobs).
    out = bytearray()
    page = 0
    while len(out) < size:
        hdr = b"PAGE" + page.to_bytes(4, "little") + bytes(8)
        recs = bytearray(hdr)
        while len(recs) + 64 <= 4096:
            recs += rng.randrange(10**6).to_bytes(4, "little")
            recs += rng.choice(WORDS).encode().ljust(20, b"\0")
            recs += rng.randbytes(24)
            recs += bytes(16)
        recs += bytes(4096 - len(recs))
        out += recs
        page += 1
    return bytes(out[:size])


def gen_random(rng, size):
    return rng.randbytes(size)


GENERATORS = {"log": gen_log, "csv": gen_csv, "db": gen_db, "bin": gen_random}
LAYOUT = [  # kind, directory, extension, share of the generated budget, size range
    ("log", "var/log/app", "log", 0.25, (64 << 10, 8 << 20)),
    ("csv", "srv/payroll/exports", "csv", 0.20, (16 << 10, 4 << 20)),
    ("db", "var/lib/payroll", "db", 0.20, (1 << 20, 24 << 20)),
    ("bin", "opt/payroll/archive", "zst", 0.35, (32 << 10, 16 << 20)),
]


def generate(root, budget, seed, prefix=""):
    """Writes generated files under root; returns [(rel, size)]."""
    rng = random.Random(seed)
    made = []
    for kind, d, ext, share, (lo, hi) in LAYOUT:
        left, i = int(budget * share), 0
        while left > 0:
            size = min(left, rng.randrange(lo, hi))
            rel = f"{d}/{prefix}{kind}{i:04d}.{ext}"
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(GENERATORS[kind](rng, size))
            os.utime(path, (FIXED_MTIME, FIXED_MTIME))
            made.append((rel, size))
            left -= size
            i += 1
    return made


# ---- tree (v1) -----------------------------------------------------------------------------

def cmd_tree(a):
    budget = a.budget
    gen_budget = int(budget * GENERATED_FRACTION)
    real_budget = budget - gen_budget
    cands = candidates()
    chosen, total, reserve, reserve_total = [], 0, [], 0
    for _, rel, size, mode in cands:
        if total < real_budget:
            chosen.append((rel, size, mode))
            total += size
        elif reserve_total < a.reserve_bytes:  # files v2 will add ("a new package")
            reserve.append((rel, size, mode))
            reserve_total += size
        else:
            break
    for rel, size, mode in chosen:
        copy_file("/" + rel, os.path.join(a.tree, rel), 0o755 if mode & 0o111 else 0o644)
    made = generate(a.tree, gen_budget, "generated-v1")
    with open(a.reserve_out, "w") as f:
        json.dump(reserve, f)
    files = sorted([(rel, size) for rel, size, _ in chosen] + made)
    with open(os.path.join(os.path.dirname(a.reserve_out), "v1-files.json"), "w") as f:
        json.dump(files, f)
    print(f"pairgen tree: {len(chosen)} files from /usr ({total / 1e6:.0f} MB), {len(made)} "
          f"generated ({sum(s for _, s in made) / 1e6:.0f} MB)", file=sys.stderr)


# ---- update (v2) ---------------------------------------------------------------------------

def is_text(data):
    return b"\0" not in data[:8192]


def change_text(rng, data):
    lines = data.split(b"\n")
    n = len(lines)
    for _ in range(max(1, n // 60)):  # alter lines: version bumps, fixed typos, new values
        i = rng.randrange(n)
        lines[i] = lines[i] + f" {rng.choice(WORDS)}-{rng.randrange(100)}".encode()
    for _ in range(rng.randrange(1, 2 + n // 200)):  # insert lines
        i = rng.randrange(n + 1)
        lines.insert(i, " ".join(rng.choices(WORDS, k=rng.randrange(2, 12))).encode())
    if n > 20 and rng.random() < 0.3:  # drop a few lines
        for _ in range(rng.randrange(1, 4)):
            del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def change_binary(rng, data):
    buf = bytearray(data)
    size = len(buf)
    kind = rng.choices(["patch", "shift", "grow"], weights=[5, 3, 2])[0]
    for _ in range(rng.randrange(1, 7)):  # patched regions (changed code, constants, tables)
        if size < 64:
            break
        ln = rng.randrange(16, max(17, min(8192, size // 8)))
        off = rng.randrange(0, max(1, size - ln))
        buf[off:off + ln] = rng.randbytes(ln)
    if kind == "shift" and size > 4096:  # code grew or shrank: everything after moves
        off = rng.randrange(size)
        if rng.random() < 0.6:
            buf[off:off] = rng.randbytes(rng.randrange(1, 4096))
        else:
            del buf[off:off + rng.randrange(1, 4096)]
    elif kind == "grow":  # new section or resources appended
        n = rng.randrange(4 << 10, 256 << 10)
        buf += gen_log(rng, n // 2) + rng.randbytes(n - n // 2)
    return kind, bytes(buf)


def cmd_update(a):
    rng = random.Random("update-v2")
    with open(os.path.join(a.work, "v1-files.json")) as f:
        v1 = [tuple(x) for x in json.load(f)]
    with open(a.reserve) as f:
        reserve = [tuple(x) for x in json.load(f)]
    hostdir = os.path.join(a.work, "v2-host")
    os.makedirs(hostdir, exist_ok=True)
    cmds, v2 = [], {}  # v2: rel -> host source path (a file in TREE or in hostdir)
    stats = {"modified_files": 0, "modified_bytes_old": 0, "modified_bytes_new": 0,
             "removed_files": 0, "removed_bytes": 0, "added_files": 0, "added_bytes": 0,
             "modified_kinds": {}}
    made_dirs = set()

    def ensure_dirs(rel):
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d in made_dirs or os.path.isdir(os.path.join(a.tree, d)):
                continue
            cmds.append(f"mkdir /{d}")
            made_dirs.add(d)

    for rel, size in v1:
        r = int.from_bytes(path_key("update-v2", rel), "big") / 2**64
        src = os.path.join(a.tree, rel)
        if r < 0.04:  # rewritten by the update
            with open(src, "rb") as f:
                data = f.read()
            if is_text(data):
                kind, new = "text", change_text(rng, data)
            else:
                kind, new = change_binary(rng, data)
            host = os.path.join(hostdir, rel)
            os.makedirs(os.path.dirname(host), exist_ok=True)
            with open(host, "wb") as f:
                f.write(new)
            os.chmod(host, os.stat(src).st_mode & 0o777)
            os.utime(host, (FIXED_MTIME + 86400, FIXED_MTIME + 86400))
            cmds += [f"rm /{rel}", f"write {host} /{rel}"]
            v2[rel] = host
            stats["modified_files"] += 1
            stats["modified_bytes_old"] += size
            stats["modified_bytes_new"] += len(new)
            stats["modified_kinds"][kind] = stats["modified_kinds"].get(kind, 0) + 1
        elif r < 0.05:  # removed by the update
            cmds.append(f"rm /{rel}")
            stats["removed_files"] += 1
            stats["removed_bytes"] += size
        else:
            v2[rel] = src

    # New files: about half real files (a newly installed package), half generated.
    real_budget = a.new_bytes // 2
    used = 0
    for rel, size, mode in reserve:
        if used >= real_budget:
            break
        host = os.path.join(hostdir, rel)
        copy_file("/" + rel, host, 0o755 if mode & 0o111 else 0o644)
        ensure_dirs(rel)
        cmds.append(f"write {host} /{rel}")
        v2[rel] = host
        used += size
        stats["added_files"] += 1
        stats["added_bytes"] += size
    made = generate(hostdir, a.new_bytes - used, "generated-v2", prefix="v2-")
    for rel, size in made:
        ensure_dirs(rel)
        host = os.path.join(hostdir, rel)
        cmds.append(f"write {host} /{rel}")
        v2[rel] = host
        stats["added_files"] += 1
        stats["added_bytes"] += size

    with open(os.path.join(a.work, "debugfs-v2.cmd"), "w") as f:
        f.write("\n".join(cmds) + "\n")
    with open(os.path.join(a.work, "v2-files.json"), "w") as f:
        json.dump(sorted(v2.items()), f)
    with open(os.path.join(a.work, "changes.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print("pairgen update: " + json.dumps(stats), file=sys.stderr)


# ---- seed folder (Trim Transfer) -----------------------------------------------------------

def cmd_seed(a):
    with open(os.path.join(a.work, "v2-files.json")) as f:
        v2 = json.load(f)
    n = b = 0
    for rel, src in v2:
        r = int.from_bytes(path_key("seed-folder", rel), "big") / 2**64
        if r >= a.fraction:
            continue
        dst = os.path.join(a.seeddir, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(src, dst)  # unchanged files are hard links into the v1 tree
        except OSError:
            shutil.copyfile(src, dst)
        n += 1
        b += os.path.getsize(dst)
    print(f"pairgen seed: {n} of {len(v2)} v2 files ({b / 1e6:.0f} MB) in the seed folder",
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tree")
    t.add_argument("tree")
    t.add_argument("--budget", type=int, required=True)
    t.add_argument("--reserve-bytes", type=int, required=True)
    t.add_argument("--reserve-out", required=True)
    u = sub.add_parser("update")
    u.add_argument("tree")
    u.add_argument("work")
    u.add_argument("--new-bytes", type=int, required=True)
    u.add_argument("--reserve", required=True)
    s = sub.add_parser("seed")
    s.add_argument("work")
    s.add_argument("seeddir")
    s.add_argument("--fraction", type=float, default=0.8)
    a = ap.parse_args()
    {"tree": cmd_tree, "update": cmd_update, "seed": cmd_seed}[a.cmd](a)


if __name__ == "__main__":
    main()
