#!/usr/bin/env python3
"""Small helpers for the benchmark scripts: result records, nginx access-log sums, the summary of
run-sync-bench.sh (the shared code is in benchlib.py).

  report.py record RESULTS.jsonl key=value ... key:=JSON ... [@file.json]
      Builds one result object, adds ratio_to_ideal when bytes_on_wire and ideal_bytes are
      known, appends it to RESULTS.jsonl and prints it as one line on stdout.
      key=value: numbers become numbers, true/false become booleans, the rest strings;
      key:=JSON: a raw JSON value; key@=FILE: the last JSON object printed in FILE (or null).
  report.py nginx LOG FROM_LINE [PATH_PREFIX]
      Sums the access log (format 'bench' of run-sync-bench.sh) from line FROM_LINE (0-based):
      prints JSON {"requests", "body_bytes", "bytes_sent", "request_bytes"}.
  report.py lines FILE          number of lines in FILE (0 if missing)
  report.py last-json FILE      the last JSON object in FILE, on one line (exit 1 if none)
  report.py get FILE KEY        a top-level value from a JSON file (dotted keys for nesting)
  report.py casync-new-chunks STORE_OLD STORE_NEW
      Chunk files in STORE_NEW whose names are not in STORE_OLD: JSON {"chunks","bytes"}.
  report.py versions NAME=COMMAND...
      JSON {NAME: the first line COMMAND prints, or null}: the versions of the tools measured.
  report.py summary RESULTS.jsonl
      A human table of the results (to stdout; the caller sends it to stderr).
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from benchlib import (append, fields, last_json, print_table, read_results, run_command,  # noqa: E402
                      tool_versions)


def cmd_record(args):
    rec = fields(args[1:])
    b, ideal = rec.get("bytes_on_wire"), rec.get("ideal_bytes")
    if isinstance(b, (int, float)) and isinstance(ideal, (int, float)) and ideal > 0:
        rec["ratio_to_ideal"] = round(b / ideal, 3)
    iz = rec.get("ideal_zstd_bytes")
    if isinstance(b, (int, float)) and isinstance(iz, (int, float)) and iz > 0:
        rec["ratio_to_ideal_zstd"] = round(b / iz, 3)
    append(args[0], rec)


def cmd_nginx(args):
    log, start = args[0], int(args[1])
    prefix = args[2] if len(args) > 2 else ""
    r = {"requests": 0, "body_bytes": 0, "bytes_sent": 0, "request_bytes": 0, "status": {}}
    try:
        lines = open(log).read().splitlines()[start:]
    except OSError:
        lines = []
    for line in lines:
        f = line.split(" ")
        if len(f) < 7 or not f[2].startswith(prefix):
            continue
        r["requests"] += 1
        r["status"][f[3]] = r["status"].get(f[3], 0) + 1
        r["body_bytes"] += int(f[4])
        r["bytes_sent"] += int(f[5])
        r["request_bytes"] += int(f[6])
    print(json.dumps(r, separators=(",", ":")))


def cmd_casync_new_chunks(args):
    def chunks(store):
        res = {}
        for dirpath, _, files in os.walk(store):
            for name in files:
                if name.endswith(".cacnk"):
                    res[name] = os.path.getsize(os.path.join(dirpath, name))
        return res
    old, new = chunks(args[0]), chunks(args[1])
    fresh = {k: v for k, v in new.items() if k not in old}
    print(json.dumps({"chunks": len(fresh), "bytes": sum(fresh.values()),
                      "chunks_total": len(new), "bytes_total": sum(new.values())}))


def fmt_bytes(n):
    if not isinstance(n, (int, float)):
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def cmd_summary(args):
    hdr = ("tool", "scenario", "image", "on wire", "ideal", "x ideal", "x zstd ideal", "seconds",
           "peak RSS")
    table, failed = [hdr], []
    for r in read_results(args[0]):
        if r.get("tool") in ("ideal", "bench"):
            continue
        if r.get("error"):
            failed.append(f"{r.get('tool', '?')} {r.get('scenario', '?')} ({r.get('image', '')}): "
                          f"FAILED: {r['error']}")
            continue
        ratio, rz = r.get("ratio_to_ideal"), r.get("ratio_to_ideal_zstd")
        secs, rss = r.get("seconds"), r.get("peak_rss_kb")
        table.append((r.get("tool", "?"), r.get("scenario", "?"), r.get("image", ""),
                      fmt_bytes(r.get("bytes_on_wire")), fmt_bytes(r.get("ideal_bytes")),
                      f"{ratio:.2f}" if isinstance(ratio, (int, float)) else "-",
                      f"{rz:.2f}" if isinstance(rz, (int, float)) else "-",
                      f"{secs:.1f}" if isinstance(secs, (int, float)) else "-",
                      f"{rss / 1024:.0f} MB" if isinstance(rss, (int, float)) else "-"))
    print_table(table)
    for line in failed:
        print(line)


def cmd_lines(args):
    try:
        print(sum(1 for _ in open(args[0], "rb")))
    except OSError:
        print(0)


def cmd_last_json(args):
    obj = last_json(args[0])
    if obj is None:
        sys.exit(1)
    print(json.dumps(obj, separators=(",", ":")))


def cmd_get(args):
    v = json.load(open(args[0]))
    for k in args[1].split("."):
        v = v.get(k) if isinstance(v, dict) else None
    print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))


def main():
    run_command(__doc__, {"record": cmd_record, "nginx": cmd_nginx, "lines": cmd_lines,
                          "last-json": cmd_last_json, "get": cmd_get,
                          "casync-new-chunks": cmd_casync_new_chunks,
                          "versions": lambda args: print(json.dumps(tool_versions(args))),
                          "summary": cmd_summary})


if __name__ == "__main__":
    main()
