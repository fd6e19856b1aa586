"""What the benchmark tools (report.py, load_report.py, agent_report.py) share: result records
(one JSON object a line, appended to RESULTS.jsonl and printed on stdout), reading them back,
CPU and memory of processes from /proc, and the plain-text tables of the summaries.

Import it after `sys.dont_write_bytecode = True`, so no __pycache__ lands in the source tree.
"""

import json
import os
import subprocess
import sys

TICK = os.sysconf("SC_CLK_TCK")


# ---- records ---------------------------------------------------------------------------------

def parse_value(v):
    """A key=value argument's value: numbers become numbers, true/false booleans, null/"" None."""
    if v in ("true", "false"):
        return v == "true"
    if v in ("null", ""):
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def last_json(path):
    """The last JSON object printed in the file at path, or None (also when it is missing)."""
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    dec = json.JSONDecoder()
    found, i = None, 0
    while True:
        j = text.find("{", i)
        if j < 0:
            return found
        try:
            obj, end = dec.raw_decode(text, j)
            found, i = obj, end
        except ValueError:
            i = j + 1


def fields(args):
    """A record from key=value (parse_value), key:=JSON and key@=FILE (last_json) arguments."""
    rec = {}
    for a in args:
        if ":=" in a:
            k, v = a.split(":=", 1)
            rec[k] = json.loads(v)
        elif "@=" in a:
            k, v = a.split("@=", 1)
            rec[k] = last_json(v)
        else:
            k, v = a.split("=", 1)
            rec[k] = parse_value(v)
    return rec


def append(results, rec):
    """Appends rec to the results file as one compact JSON line and prints that line."""
    line = json.dumps(rec, separators=(",", ":"))
    with open(results, "a") as f:
        f.write(line + "\n")
    print(line, flush=True)


def read_results(results):
    """The records of a results file, in order (none when it is missing)."""
    rows = []
    try:
        with open(results) as f:
            for line in f:
                if line.strip():
                    rows.append(json.loads(line))
    except OSError:
        pass
    return rows


def tool_versions(specs):
    """{name: first line of the command's output, or None} for NAME=COMMAND specs (split on spaces)."""
    def first(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            return None
    versions = {}
    for spec in specs:
        name, cmd = spec.split("=", 1)
        versions[name] = first(cmd.split())
    return versions


# ---- processes ---------------------------------------------------------------------------------

def proc_stat(pid):
    """The fields of /proc/PID/stat after "pid (comm) ": state is [0], ppid [1], utime [11]."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pids):
    """CPU seconds (user + system, all threads) used so far by these processes (gone ones: 0)."""
    total = 0
    for pid in pids:
        try:
            st = proc_stat(pid)
        except OSError:
            continue
        total += int(st[11]) + int(st[12])  # utime, stime (fields 14 and 15)
    return total / TICK


def running(pid):
    """Whether the process exists and is not a zombie."""
    try:
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


def loadavg():
    """The one-minute load average, as /proc/loadavg writes it."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def snapshot():
    """pid -> (ppid, CPU seconds so far, kernel thread?) for every process."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = proc_stat(pid)
        except OSError:
            continue
        ppid = st[1]
        procs[pid] = (ppid, (int(st[11]) + int(st[12])) / TICK, pid == "2" or ppid == "2")
    return procs


class ForeignCpu:
    """CPU used by processes outside the process tree of one pid, from snapshots taken often:
    a process that exits between two snapshots loses only what it used since the last one."""

    def __init__(self, ours):
        self.ours = ours
        self.first = {}
        self.last = {}
        self.kernel = set()
        self.add(snapshot(), baseline=True)

    def descends(self, pid, procs):
        for _ in range(64):
            if pid == self.ours:
                return True
            if pid not in procs:
                return False
            pid = procs[pid][0]
        return False

    def add(self, procs, baseline=False):
        for pid, (_, cpu, kthread) in procs.items():
            if self.descends(pid, procs):
                continue
            self.first.setdefault(pid, cpu if baseline else 0.0)
            self.last[pid] = cpu
            if kthread:
                self.kernel.add(pid)

    def seconds(self):
        """(user-space processes, kernel threads)"""
        used = {pid: self.last[pid] - self.first[pid] for pid in self.last}
        kernel = sum(v for pid, v in used.items() if pid in self.kernel)
        return sum(used.values()) - kernel, kernel


# ---- output ------------------------------------------------------------------------------------

def print_table(table):
    """Prints rows (the first one the header) as left-aligned columns two spaces apart."""
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def run_command(doc, commands):
    """Runs commands[argv[1]] with the remaining arguments; exits with doc (the usage) otherwise."""
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(doc)
    commands[sys.argv[1]](sys.argv[2:])
