#!/usr/bin/env python3
"""The summary of run-vm-bench.sh: vm_report.py RESULTS.jsonl

Medians of each measurement, the export's read throughput as a ratio of the plaintext file's,
and the launch times with the acceleration they ran under (printed to stdout; the bench sends
it to stderr).
"""

import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from benchlib import print_table, read_results  # noqa: E402


def main():
    rows = read_results(sys.argv[1])
    table = [["measurement", "runs", "median", "unit", "note"]]
    rates = {}
    for tool in ("plaintext", "qemu-nbd", "export"):
        vals = [r["mb_per_s"] for r in rows if r.get("tool") == tool and r.get("scenario") == "read-throughput"]
        if vals:
            rates[tool] = statistics.median(vals)
            table.append([f"read throughput, {tool}", len(vals), f"{rates[tool]:.0f}", "MB/s",
                          "qemu-img bench, 1 MiB sequential"])
    for base in ("plaintext", "qemu-nbd"):
        if "export" in rates and rates.get(base, 0) > 0:
            table.append([f"export / {base}", "", f"{rates['export'] / rates[base]:.2f}", "x", ""])
    for scenario in ("cold-start-to-window", "warm-launch-to-window", "suspend-to-disk",
                     "resume-from-suspend-to-window"):
        for app in sorted({r.get("app", "") for r in rows if r.get("scenario") == scenario}):
            got = [r for r in rows if r.get("scenario") == scenario and r.get("app", "") == app]
            accel = ",".join(sorted({r.get("accel", "?") for r in got}))
            name = f"{scenario} ({app})" if app else scenario
            table.append([name, len(got), f"{statistics.median(r['seconds'] for r in got):.2f}", "s", accel])
    for r in rows:
        if r.get("scenario") == "guest-image":
            table.append([f"guest image ({r['variant']}), VHD", 1, f"{r['vhd_bytes'] / 2**20:.0f}", "MiB",
                          f"{r['packages']} packages"])
            if r.get("tree_build_seconds") is not None:
                table.append([f"guest image ({r['variant']}), cold tree build", 1,
                              f"{r['tree_build_seconds']:.0f}", "s", "mmdebstrap, as last built"])
    for r in rows:
        if r.get("status") == "not-built":
            table.append([r["scenario"], 0, "-", "", r.get("note", "not built")])
    print_table(table)


if __name__ == "__main__":
    main()
