#!/usr/bin/env python3
"""Hostile clients against a loopback HTTP server, with legitimate probes.

    hostile_client.py --port P --mode MODE [--conns N] [--duration S]
                      [--sources 127.0.0.2-127.0.0.40]
                      --probe 'PORT METHOD PATH EXPECTED [HEADER: VALUE]...' [--probe ...]
                      [--probe-body B] [--after S]

Modes (the attacker keeps up the pressure for --duration seconds):
  half       bursts of N connections that each send half a request line
             and close, one burst after the other
  idle       N connections that send nothing; one the server closes is
             opened again
  slowloris  N connections that send a request line and then one header
             line per second, never the end of the headers; reopened when
             the server closes them
  none       no attack (the probes alone)

Probes: every 50 ms one of the --probe requests in turn, each on a new
connection (so it needs a free connection slot), 5 s timeout, during the
attack and for --after seconds after it.  The report (JSON on stdout):
attack counters, probes during the attack and after it (ok / total, the
slowest), and the statuses seen when a probe failed.

Only loopback addresses are used; everything is closed on exit, and the
whole run is bounded by --duration + --after + 6 s.
"""
import argparse
import json
import selectors
import socket
import sys
import threading
import time


def parse_sources(spec):
    if not spec:
        return [None]
    a, _, b = spec.partition("-")
    pa = [int(x) for x in a.split(".")]
    pb = [int(x) for x in (b or a).split(".")]
    if pa[:3] != pb[:3] or pa[0] != 127:
        raise SystemExit("--sources: a range within one 127.x.y.0/24")
    return ["%d.%d.%d.%d" % (pa[0], pa[1], pa[2], i) for i in range(pa[3], pb[3] + 1)]


class Attack:
    def __init__(self, port, mode, conns, sources):
        self.port, self.mode, self.conns = port, mode, conns
        self.sources = parse_sources(sources)
        self.k = 0
        self.sel = selectors.DefaultSelector()
        self.socks = {}
        self.opened = self.refused = self.closed_by_server = 0

    def connect(self):
        src = self.sources[self.k % len(self.sources)]
        self.k += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            if src:
                s.bind((src, 0))
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.refused += 1
            return None
        self.opened += 1
        return s

    def hold(self, s):
        s.setblocking(False)
        self.socks[s.fileno()] = s
        self.sel.register(s, selectors.EVENT_READ)

    def drop(self, s):
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        self.socks.pop(s.fileno(), None)
        s.close()

    def open_held(self):
        s = self.connect()
        if s is None:
            return
        if self.mode == "slowloris":
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                s.close()
                return
        self.hold(s)

    def run(self, duration, stop_at):
        end = time.monotonic() + duration
        if self.mode == "half":
            while time.monotonic() < end:
                for _ in range(self.conns):
                    s = self.connect()
                    if s is None:
                        continue
                    try:
                        s.sendall(b"GET /healthz HT")
                    except OSError:
                        pass
                    s.close()
                    if time.monotonic() >= end:
                        break
            return
        if self.mode == "none":
            time.sleep(duration)
            return
        while len(self.socks) < self.conns and time.monotonic() < end:
            self.open_held()
        next_drip = time.monotonic() + 1.0
        while time.monotonic() < end:
            for key, _ in self.sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:  # closed by the server: come back
                    self.closed_by_server += 1
                    self.drop(s)
            while len(self.socks) < self.conns and time.monotonic() < end:
                self.open_held()
            if self.mode == "slowloris" and time.monotonic() >= next_drip:
                next_drip += 1.0
                for s in list(self.socks.values()):
                    try:
                        s.send(b"X-Slow: 1\r\n")
                    except OSError:
                        self.closed_by_server += 1
                        self.drop(s)

    def close_all(self):
        for s in list(self.socks.values()):
            self.drop(s)


def probe_once(spec, body):
    port, method, path, expected, headers = spec
    t0 = time.monotonic()
    status = "none"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.settimeout(5)
            req = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" % (method, path)
            for h in headers:
                req += h + "\r\n"
            data = b""
            if method == "POST":
                data = body.encode()
                req += "Content-Length: %d\r\n" % len(data)
            s.sendall(req.encode() + b"\r\n" + data)
            resp = b""
            while b"\r\n" not in resp:
                chunk = s.recv(4096)
                if not chunk:
                    break
                resp += chunk
            line = resp.split(b"\r\n", 1)[0].decode("latin1")
            parts = line.split(" ")
            status = parts[1] if len(parts) > 1 else "garbled"
        finally:
            s.close()
    except socket.timeout:
        status = "timeout"
    except OSError as e:
        status = "error:" + type(e).__name__
    return status == expected, status, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=["half", "idle", "slowloris", "none"], required=True)
    ap.add_argument("--conns", type=int, default=1100)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--after", type=float, default=1.0)
    ap.add_argument("--sources", default="")
    ap.add_argument("--probe", action="append", default=[])
    ap.add_argument("--probe-body", default="")
    a = ap.parse_args()

    probes = []
    for p in a.probe:
        f = p.split(" ", 4)
        hdrs = [h for h in (f[4].split("|") if len(f) > 4 else []) if h]
        probes.append((int(f[0]), f[1], f[2], f[3], hdrs))

    results = []  # (phase, ok, status, seconds)
    lock = threading.Lock()
    phase = {"v": "during"}
    stop = threading.Event()

    def prober():
        i = 0
        while not stop.is_set():
            if probes:
                ph = phase["v"]
                ok, st, dt = probe_once(probes[i % len(probes)], a.probe_body)
                i += 1
                with lock:
                    results.append((ph, ok, st, dt))
            stop.wait(0.05)

    atk = Attack(a.port, a.mode, a.conns, a.sources)
    th = threading.Thread(target=prober, daemon=True)
    t0 = time.monotonic()
    th.start()
    try:
        atk.run(a.duration, t0 + a.duration)
    finally:
        held = len(atk.socks)
        atk.close_all()
    t_end = time.monotonic()
    phase["v"] = "after"
    time.sleep(a.after)
    stop.set()
    th.join(6)

    def summary(ph):
        rs = [r for r in results if r[0] == ph]
        bad = {}
        for r in rs:
            if not r[1]:
                bad[r[2]] = bad.get(r[2], 0) + 1
        return {
            "ok": sum(1 for r in rs if r[1]),
            "total": len(rs),
            "slowest_ms": int(max([r[3] for r in rs] or [0]) * 1000),
            "failures": bad,
        }

    print(json.dumps({
        "mode": a.mode,
        "attack_s": round(t_end - t0, 2),
        "opened": atk.opened,
        "connect_failed": atk.refused,
        "closed_by_server": atk.closed_by_server,
        "held_at_end": held,
        "during": summary("during"),
        "after": summary("after"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
