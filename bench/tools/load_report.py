#!/usr/bin/env python3
"""Records and summaries for run-load-bench.sh (records go through report.py's conventions:
one JSON object a line, appended to RESULTS.jsonl and printed on stdout).

  load_report.py wrk RESULTS.jsonl WRK_OUTPUT SAMPLE.json key=value ... key:=JSON ...
      Reads the JSON line that bench/tools/load.lua's done() printed at the end of WRK_OUTPUT
      and records requests_per_s, mb_per_s (bytes read by wrk, headers included, decimal MB),
      p50_ms, p90_ms, p99_ms, max_ms, errors (socket errors + timeouts + status >= 400) and
      wrk's raw counts under "wrk", the fields of SAMPLE.json (see sample; a missing file adds
      none), plus the given fields. Exit 1 when wrk printed no result.
  load_report.py ratios RESULTS.jsonl
      For every scenario and connection count measured on both servers, records
      tool=ratio with heirloom/nginx for requests/s and MB/s (and p99, errors side by side).
  load_report.py summary RESULTS.jsonl
      A human table (stdout; the caller sends it to stderr).
  load_report.py sample OUT.json WRK_PID ATTACKER_PID BENCH_PID SERVER_PID...
      Runs while process WRK_PID lives, every 0.2 s; then writes OUT.json: the server's CPU
      seconds over that time (all threads and worker processes), its peak resident memory (KiB,
      summed) and peak thread count, wrk's and the attacker's CPU seconds (ATTACKER_PID 0: none),
      and the CPU seconds used meanwhile outside the benchmark's process tree (BENCH_PID and its
      descendants): other_cpu_seconds for processes (builds running next to the benchmark show
      up there; processes that exit lose what they used in their last 0.2 s),
      kernel_threads_cpu_seconds for kernel threads (ksoftirqd, kworker).
"""

import json
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from benchlib import (ForeignCpu, append, cpu_seconds, fields, last_json, loadavg,  # noqa: E402
                      print_table, read_results, run_command, running, snapshot)


def cmd_wrk(args):
    results, out, sample = args[0], args[1], args[2]
    w = last_json(out)
    if not w or "requests" not in w:
        sys.exit(f"load_report: no wrk result in {out}")
    secs = w["duration_us"] / 1e6
    lat = w["latency_us"]
    socket_errors = w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]
    rec = fields(args[3:])
    def ms(us, digits=2):  # no latency without a request
        return round(us / 1000, digits) if w["requests"] else None
    rec.update({
        "requests": w["requests"],
        "seconds": round(secs, 2),
        "requests_per_s": round(w["requests"] / secs, 1),
        "mb_per_s": round(w["bytes"] / secs / 1e6, 1),
        "p50_ms": ms(lat["p50"]),
        "p90_ms": ms(lat["p90"]),
        "p99_ms": ms(lat["p99"]),
        "max_ms": ms(lat["max"], 1),
        "errors": socket_errors + w["http_errors"],
        "socket_errors": socket_errors,
        "http_errors": w["http_errors"],
        "wrk": w,
    })
    try:
        rec.update(json.load(open(sample)))
    except (OSError, ValueError):
        pass
    cpu = rec.get("server_cpu_seconds")
    if isinstance(cpu, (int, float)) and w["requests"]:
        rec["server_cpu_us_per_request"] = round(cpu * 1e6 / w["requests"], 1)
    append(results, rec)


def measured(rows):
    return [r for r in rows if r.get("tool") in ("heirloom", "nginx") and "requests_per_s" in r]


def cmd_ratios(args):
    rows = measured(read_results(args[0]))
    by = {(r["tool"], r["scenario"], r["connections"]): r for r in rows}
    for (tool, scenario, conns), h in list(by.items()):
        n = by.get(("nginx", scenario, conns))
        if tool != "heirloom" or not n:
            continue

        def ratio(key):
            return round(h[key] / n[key], 3) if n.get(key) and h.get(key) is not None else None
        append(args[0], {"tool": "ratio", "scenario": scenario, "connections": conns,
                         "of": "heirloom/nginx", "requests_per_s": ratio("requests_per_s"),
                         "mb_per_s": ratio("mb_per_s"), "p99": ratio("p99_ms"),
                         "cpu_us_per_request": ratio("server_cpu_us_per_request"),
                         "errors": {"heirloom": h["errors"], "nginx": n["errors"]}})


def cmd_summary(args):
    rows = read_results(args[0])
    hdr = ("server", "scenario", "conns", "req/s", "MB/s", "p50 ms", "p99 ms", "errors",
           "CPU us/req", "threads", "x nginx req/s", "other CPU s")
    ratios = {(r["scenario"], r["connections"]): r for r in rows if r.get("tool") == "ratio"}
    table = [hdr]
    for r in measured(rows):
        ra = ratios.get((r["scenario"], r["connections"])) if r["tool"] == "heirloom" else None
        def num(v, fmt):
            return format(v, fmt) if isinstance(v, (int, float)) else "-"
        table.append((r["tool"], r["scenario"], str(r["connections"]), num(r["requests_per_s"], ".0f"),
                      num(r["mb_per_s"], ".1f"), num(r["p50_ms"], ".2f"), num(r["p99_ms"], ".2f"),
                      str(r["errors"]), str(r.get("server_cpu_us_per_request", "-")),
                      str(r.get("server_peak_threads", "-")),
                      f"{ra['requests_per_s']:.2f}" if ra and ra.get("requests_per_s") else "",
                      str(r.get("other_cpu_seconds", "-"))))
    print_table(table)
    for r in rows:
        if r.get("tool") == "slowloris":
            s = r.get("slowloris", {})
            ca = s.get("first_wave_close_after_seconds") or {}
            aa = s.get("answer_after_seconds") or {}
            answers = ", ".join(f"{k} x{v}" for k, v in (s.get("answers") or {}).items()) or "none"
            print(f"slowloris vs {r['server']}: {s.get('first_wave_open')}/{s.get('target')} opened "
                  f"in {s.get('seconds_to_open')} s; closed by the server: {s.get('closed_by_server')} "
                  f"(first wave {s.get('first_wave_closed')}, after {ca.get('min', '-')}-{ca.get('max', '-')} s); "
                  f"answers: {answers} (after {aa.get('min', '-')}-{aa.get('max', '-')} s); "
                  f"{s.get('open_at_end')} open at the end ({s.get('answered_left_open')} of them answered); "
                  f"failures: {s.get('connect_failures')} connect, {s.get('handshake_failures')} handshake")
        if r.get("error"):
            print(f"{r.get('tool')} {r.get('scenario')}: FAILED: {r['error']}")


def rss_threads(pids):
    rss = threads = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads += int(line.split()[1])
        except OSError:
            continue
    return rss, threads


def cmd_sample(args):
    out, wrk, attacker, ours, servers = args[0], args[1], args[2], args[3], args[4:]
    attackers = [attacker] if attacker != "0" else []
    s0, a0, foreign = cpu_seconds(servers), cpu_seconds(attackers), ForeignCpu(ours)
    w_last = a_last = 0.0
    peak_rss = peak_threads = 0
    while running(wrk):
        w_last = max(w_last, cpu_seconds([wrk]))
        if attackers:
            a_last = max(a_last, cpu_seconds(attackers) - a0)
        rss, threads = rss_threads(servers)
        peak_rss, peak_threads = max(peak_rss, rss), max(peak_threads, threads)
        foreign.add(snapshot())
        time.sleep(0.2)
    server = cpu_seconds(servers) - s0
    foreign.add(snapshot())
    other, kernel = foreign.seconds()
    with open(out, "w") as f:
        json.dump({"server_cpu_seconds": round(server, 2), "server_peak_rss_kb": peak_rss,
                   "server_peak_threads": peak_threads, "wrk_cpu_seconds": round(w_last, 2),
                   "attacker_cpu_seconds": round(a_last, 2) if attackers else None,
                   "other_cpu_seconds": round(other, 2),
                   "kernel_threads_cpu_seconds": round(kernel, 2),
                   "loadavg": loadavg()}, f)


def main():
    run_command(__doc__, {"wrk": cmd_wrk, "ratios": cmd_ratios, "summary": cmd_summary, "sample": cmd_sample})


if __name__ == "__main__":
    main()
