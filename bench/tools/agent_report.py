#!/usr/bin/env python3
"""Helpers for run-agent-bench.sh (records follow report.py's conventions: one JSON object a
line, appended to RESULTS.jsonl and printed on stdout).

  agent_report.py cpu PID...
      CPU seconds (user + system, all threads) used so far by the live processes among PID...
  agent_report.py peak-rss PID
      The process's peak resident memory so far (VmHWM, KiB; 0 if it is gone).
  agent_report.py workspace STATUS.json ID
      The workspace ID of an agent status (`heirloom status --json`, `heirloom sync --wait
      --json`), as one JSON line; exit 1 when the status has no such workspace.
  agent_report.py check-enrolled STATUS.json WORKSPACES
      Exit 1 (with the reason on stderr) unless the agent is enrolled, holds a policy, has no
      error and shows WORKSPACES workspaces.
  agent_report.py check-workspace WORKSPACE.json VERSION
      Exit 1 (with the reason on stderr) unless the workspace is ready at VERSION, without an
      error, after fetching something from the network.
  agent_report.py sample OUT.json WATCH_PID BENCH_PID
      Runs while process WATCH_PID lives, every 0.2 s; then writes OUT.json: the CPU seconds
      used meanwhile outside BENCH_PID's process tree (other_cpu_seconds: other people's
      builds; kernel_threads_cpu_seconds) and the load average (benchlib.py's ForeignCpu).
  agent_report.py ratios RESULTS.jsonl
      For each scenario, records tool=ratio for agent / direct-nginx, direct-server /
      direct-nginx and agent / direct-server, from the median seconds and bytes of the runs:
      seconds_ratio, bytes_ratio.
  agent_report.py summary RESULTS.jsonl
      A human table (stdout; the caller sends it to stderr): medians, min-max of the runs.
"""

import json
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from benchlib import (ForeignCpu, append, cpu_seconds, loadavg, print_table,  # noqa: E402
                      read_results, run_command, running, snapshot)


def peak_rss(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmd_workspace(args):
    status = json.load(open(args[0]))
    for w in status.get("workspaces", []):
        if w.get("id") == args[1]:
            print(json.dumps(w, separators=(",", ":")))
            return
    sys.exit(f"agent_report: no workspace {args[1]} in {args[0]}: "
             f"{json.dumps(status, separators=(',', ':'))[:400]}")


def cmd_check_enrolled(args):
    s = json.load(open(args[0]))
    problems = []
    if not s.get("enrolled"):
        problems.append("not enrolled")
    if "policy" not in s:
        problems.append("no policy")
    if s.get("last_error"):
        problems.append(f"last_error: {s['last_error']}")
    if len(s.get("workspaces", [])) != int(args[1]):
        problems.append(f"{len(s.get('workspaces', []))} workspaces, expected {args[1]}")
    if problems:
        sys.exit("; ".join(problems))


def cmd_check_workspace(args):
    w = json.load(open(args[0]))
    want = int(args[1])
    problems = []
    if w.get("current_version") != want:
        problems.append(f"current_version is {w.get('current_version')}, expected {want}")
    if w.get("state") != "ready":
        problems.append(f"state is {w.get('state')!r}, expected 'ready'")
    if w.get("last_error"):
        problems.append(f"last_error: {w['last_error']}")
    if not w.get("bytes_network"):
        problems.append("bytes_network is 0: nothing came from the server")
    if problems:
        sys.exit("; ".join(problems))


TOOLS = ("agent", "direct-server", "direct-nginx")
SCENARIOS = ("first-sync", "update")


def measured(rows):
    """(tool, scenario) -> the successful measurements of it."""
    m = {}
    for r in rows:
        if r.get("tool") in TOOLS and not r.get("error") and isinstance(r.get("seconds"), (int, float)):
            m.setdefault((r["tool"], r["scenario"]), []).append(r)
    return m


def median(runs, key):
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def cmd_ratios(args):
    results = args[0]
    m = measured(read_results(results))
    for scenario in SCENARIOS:
        for a, b in (("agent", "direct-nginx"), ("direct-server", "direct-nginx"),
                     ("agent", "direct-server")):
            ra, rb = m.get((a, scenario)), m.get((b, scenario))
            if not ra or not rb:
                continue
            sa, sb = median(ra, "seconds"), median(rb, "seconds")
            ba, bb = median(ra, "bytes"), median(rb, "bytes")
            append(results, {"tool": "ratio", "scenario": scenario, "of": f"{a}/{b}",
                             "seconds_ratio": round(sa / sb, 3) if sb else None,
                             "bytes_ratio": round(ba / bb, 5) if bb else None,
                             "median_seconds": [sa, sb], "median_bytes": [ba, bb],
                             "runs": [len(ra), len(rb)]})


def fmt_mb(n):
    return f"{n / 1e6:.1f}" if isinstance(n, (int, float)) else "-"


def fmt_s(n, digits=2):
    return f"{n:.{digits}f}" if isinstance(n, (int, float)) else "-"


def cmd_summary(args):
    rows = read_results(args[0])
    m = measured(rows)
    hdr = ("tool", "scenario", "v", "seconds (min-max)", "MB from source", "MB/s", "requests",
           "client CPU s", "server CPU s", "other CPU s", "x nginx s", "x nginx bytes")
    table = [hdr]
    ratio = {(r["scenario"], r["of"]): r for r in rows if r.get("tool") == "ratio"}
    for scenario in SCENARIOS:
        for tool in TOOLS:
            runs = m.get((tool, scenario))
            if not runs:
                continue
            q = ratio.get((scenario, f"{tool}/direct-nginx"), {})
            secs, b = median(runs, "seconds"), median(runs, "bytes")
            lo, hi = min(r["seconds"] for r in runs), max(r["seconds"] for r in runs)
            table.append((tool, scenario, str(runs[0].get("version", "-")),
                          f"{secs:.2f} ({lo:.2f}-{hi:.2f})", fmt_mb(b),
                          fmt_s(b / 1e6 / secs, 1) if secs and isinstance(b, (int, float)) else "-",
                          str(runs[0].get("requests", "-")), fmt_s(median(runs, "client_cpu_seconds")),
                          fmt_s(median(runs, "server_cpu_seconds")),
                          fmt_s(median(runs, "other_cpu_seconds")),
                          fmt_s(q.get("seconds_ratio")), fmt_s(q.get("bytes_ratio"), 4)))
    print_table(table)
    for r in rows:
        if r.get("tool") == "check":
            print(f"check: export of {r.get('scenario')} {'identical to' if r.get('identical') else 'DIFFERS from'}"
                  f" v{r.get('version')}.vhd")
        if r.get("error"):
            print(f"{r.get('tool')} {r.get('scenario')}: FAILED: {r['error']}")


def cmd_sample(args):
    out, watch, ours = args[0], args[1], args[2]
    foreign = ForeignCpu(ours)
    while running(watch):
        foreign.add(snapshot())
        time.sleep(0.2)
    foreign.add(snapshot())
    other, kernel = foreign.seconds()
    with open(out, "w") as f:
        json.dump({"other_cpu_seconds": round(other, 2), "kernel_threads_cpu_seconds": round(kernel, 2),
                   "loadavg": loadavg()}, f)


def main():
    run_command(__doc__, {"cpu": lambda args: print(round(cpu_seconds(args), 2)),
                          "peak-rss": lambda args: print(peak_rss(args[0])),
                          "workspace": cmd_workspace, "check-enrolled": cmd_check_enrolled,
                          "check-workspace": cmd_check_workspace, "sample": cmd_sample,
                          "ratios": cmd_ratios, "summary": cmd_summary})


if __name__ == "__main__":
    main()
