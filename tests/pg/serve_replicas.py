#!/usr/bin/env python3
"""Helpers of tests/pg/serve_replicas.sh (jwtkit serve replicas sharing a
PostgreSQL keyring).  Standard library only; talks to 127.0.0.1 only.

Background workers (each stops when its STOPFILE appears, or on SIGTERM):
  ticker OUT STOPFILE                   records machine stalls (> 0.25 s)
  poll OUT STOPFILE NAME=PORT...        snapshot of every replica every 0.1 s:
                                        JWKS ETag + /metrics generation
  sample OUT STOPFILE JWTKIT URL KEK    `jwtkit keyring list URL --json` once a second
  load OUTDIR STOPFILE SECRET NAME=PORT...   token + JWKS requests on keep-alive
                                        connections, every result time-stamped

One-shot commands (exit 0 = pass, 1 = fail, details on stdout):
  wait-gen GEN TIMEOUT NAME=PORT...     every replica serves generation >= GEN
                                        and all serve the same (generation, ETag)
  next-due                              stdin: the keyring doc; prints "EPOCH KIND"
  retire-due                            stdin: the keyring doc; earliest retirement
  kill-writer ...                       SIGKILL the process blocked in a keyring
                                        write (see cmd_kill_writer)
  cli-chaos ...                         `keyring rotate --force`, SIGKILLed at random
  check-samples FILE                    keyring invariants over the sampled lists
  check-actions ...                     every keyring action once per kid
  check-converge ...                    ETag/generation convergence and errors
  load-report ...                       outage load figures
  jwks-ok FILE                          a JWK Set with public keys only
  no-private-members                    stdin: keyring doc without "d" etc.
  doc-summary                           stdin: keyring doc -> "kid state" lines
  token-kid TOKENFILE                   kid from the JOSE header
"""
import base64
import hashlib
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

STOP = threading.Event()


def on_term(signum, frame):
    STOP.set()


def stopped(stopfile):
    return STOP.is_set() or os.path.exists(stopfile)


def parse_specs(specs):
    out = []
    for s in specs:
        name, port = s.split("=", 1)
        out.append((name, int(port)))
    return out


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def request(port, path, method="GET", body=None, headers=None, timeout=10.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


GEN_RE = re.compile(rb"^jwtkit_keyring_generation (\d+)$", re.M)


def snapshot(port):
    """(status, generation, etag) of one replica; generation and ETag from
    the same snapshot (JWKS, metrics, JWKS again with the same ETag)."""
    try:
        for _ in range(5):
            s1, h1, b1 = request(port, "/.well-known/jwks.json")
            s2, _, m = request(port, "/metrics")
            s3, h3, _ = request(port, "/.well-known/jwks.json")
            if s1 != 200 or s2 != 200 or s3 != 200:
                return ("http%d/%d/%d" % (s1, s2, s3), -1, "-")
            e1, e3 = h1.get("etag", ""), h3.get("etag", "")
            if e1 != e3:
                continue
            if e1 != '"%s"' % b64url(hashlib.sha256(b1).digest()):
                return ("bad-etag", -1, e1)
            mm = GEN_RE.search(m)
            if not mm:
                return ("no-generation", -1, e1)
            return ("ok", int(mm.group(1)), e1)
        return ("unstable", -1, "-")
    except ConnectionRefusedError:
        return ("down", -1, "-")
    except Exception as e:  # timeouts, resets
        return ("error:" + type(e).__name__, -1, "-")


# ---------------------------------------------------------------- ticker


def cmd_ticker(args):
    """ticker OUT STOPFILE: wakes up every 20 ms and records the intervals in
    which it could not run for more than 250 ms ("EPOCH_FROM EPOCH_TO"): the
    machine (2 shared cores) was stalled, for every process of the test."""
    out, stopfile = args
    with open(out, "a") as f:
        n = 0
        while True:
            if n % 25 == 0 and stopped(stopfile):
                break
            n += 1
            m0, w0 = time.monotonic(), time.time()
            time.sleep(0.02)
            d = time.monotonic() - m0
            if d > 0.25:
                f.write("%.3f %.3f\n" % (w0 + 0.02, w0 + d))
                f.flush()
    return 0


def read_stalls(path):
    out = []
    if path and os.path.exists(path):
        for l in open(path):
            fs = l.split()
            if len(fs) == 2:
                out.append((float(fs[0]), float(fs[1])))
    return out


def stalled_within(stalls, a, b):
    """seconds of [a, b] during which the machine was stalled"""
    return sum(max(0.0, min(b, y) - max(a, x)) for x, y in stalls)


# ------------------------------------------------------------------ poll


def cmd_poll(args):
    out, stopfile = args[0], args[1]
    reps = parse_specs(args[2:])
    with open(out, "a") as f:
        while not stopped(stopfile):
            for name, port in reps:
                t = time.time()
                st, gen, etag = snapshot(port)
                f.write("%.3f %s %s %d %s\n" % (t, name, st, gen, etag))
            f.flush()
            time.sleep(0.1)
    return 0


# ---------------------------------------------------------------- sample


def cmd_sample(args):
    out, stopfile, jwtkit, url, kek = args
    nxt = time.time()
    with open(out, "a") as f:
        while not stopped(stopfile):
            t = time.time()
            try:
                p = subprocess.run([jwtkit, "keyring", "list", url, "--kek-file", kek, "--json"],
                                   capture_output=True, text=True, timeout=15)
                rec = {"t": t, "rc": p.returncode, "out": p.stdout.strip(), "err": p.stderr.strip()[:300]}
            except subprocess.TimeoutExpired:
                rec = {"t": t, "rc": -1, "out": "", "err": "timeout"}
            f.write(json.dumps(rec) + "\n")
            f.flush()
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.time()))
    return 0


# ------------------------------------------------------------------ load


def cmd_load(args):
    outdir, stopfile, secret = args[0], args[1], args[2]
    reps = parse_specs(args[3:])
    auth = "Basic " + base64.b64encode(("demo:" + secret).encode()).decode()
    results = []  # (t, name, kind, status)
    tokens = []  # (t, name, token)
    lock = threading.Lock()

    def worker(name, port, kind):
        conn = None
        mine, toks = [], []
        while not stopped(stopfile):
            t = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                if kind == "token":
                    conn.request("POST", "/token", body="grant_type=client_credentials",
                                 headers={"Authorization": auth,
                                          "Content-Type": "application/x-www-form-urlencoded"})
                else:
                    conn.request("GET", "/.well-known/jwks.json")
                r = conn.getresponse()
                data = r.read()
                status = str(r.status)
                if r.status == 200 and kind == "token":
                    tok = json.loads(data)["access_token"]
                    toks.append((t, name, tok))
                elif r.status == 200:
                    json.loads(data)["keys"]  # a JWK Set
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:
                status = "exc:" + type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            mine.append((t, name, kind, status))
            time.sleep(0.003)
        with lock:
            results.extend(mine)
            tokens.extend(toks)

    ths = [threading.Thread(target=worker, args=(n, p, k)) for n, p in reps for k in ("token", "jwks")]
    for th in ths:
        th.start()
    while not stopped(stopfile):
        time.sleep(0.05)
    STOP.set()
    for th in ths:
        th.join()
    with open(os.path.join(outdir, "requests.txt"), "w") as f:
        for r in sorted(results):
            f.write("%.3f %s %s %s\n" % r)
    with open(os.path.join(outdir, "tokens.txt"), "w") as f:
        for t in sorted(tokens):
            f.write("%.3f %s %s\n" % t)
    return 0


def cmd_load_report(args):
    """load-report OUTDIR DOWN_FROM DOWN_TO: fails on any failed request or
    when a replica served no token or no JWKS while the database was down;
    writes OUTDIR/outage-tokens.txt (a few tokens minted during the outage)."""
    outdir, t_a, t_b = args[0], float(args[1]), float(args[2])
    rows = [l.split() for l in open(os.path.join(outdir, "requests.txt"))]
    total = {}
    failed = {}
    during = {}
    first_fail = []
    names = sorted({r[1] for r in rows})
    for t, name, kind, status in rows:
        t = float(t)
        total[kind] = total.get(kind, 0) + 1
        if status != "200":
            failed[kind] = failed.get(kind, 0) + 1
            if len(first_fail) < 5:
                first_fail.append("%.3f %s %s %s" % (t, name, kind, status))
        if t_a <= t <= t_b and status == "200":
            during[(name, kind)] = during.get((name, kind), 0) + 1
    ok = True
    print("    requests: %s; failed: %s" % (
        ", ".join("%s %d" % kv for kv in sorted(total.items())),
        ", ".join("%s %d" % kv for kv in sorted(failed.items())) or "none"))
    for f in first_fail:
        print("    failed request: " + f)
    if failed:
        ok = False
    span = t_b - t_a
    print("    served while the database was down (%.1f s):" % span)
    for name in names:
        tk, jw = during.get((name, "token"), 0), during.get((name, "jwks"), 0)
        print("      %s: %d tokens, %d JWKS (%.0f req/s)" % (name, tk, jw, (tk + jw) / span if span > 0 else 0))
        if tk == 0 or jw == 0:
            ok = False
    if not names or total.get("token", 0) == 0:
        ok = False
    # three tokens per replica from the outage: first, middle, last
    toks = {}
    for l in open(os.path.join(outdir, "tokens.txt")):
        t, name, tok = l.split()
        if t_a <= float(t) <= t_b:
            toks.setdefault(name, []).append((t, tok))
    with open(os.path.join(outdir, "outage-tokens.txt"), "w") as f:
        for name, lst in sorted(toks.items()):
            for i in sorted({0, len(lst) // 2, len(lst) - 1}):
                f.write("%s %s %s\n" % (name, lst[i][0], lst[i][1]))
    return 0 if ok else 1


# -------------------------------------------------------------- wait-gen


def cmd_wait_gen(args):
    """wait-gen GEN TIMEOUT [--since EPOCH] [--log NAME=FILE]... [--stalls FILE] NAME=PORT...

    Waits (TIMEOUT seconds from now) until every replica serves a
    generation >= GEN and all serve the same (generation, ETag).  The lag of
    a replica is counted from EPOCH (default: now): from its "serving
    keyring" log line (ms time stamps) when its log is given, else from the
    first poll that saw it; without the machine stalls recorded in FILE
    (see ticker) it must be at most TIMEOUT."""
    gen, timeout = int(args[0]), float(args[1])
    rest = args[2:]
    tstart = time.time()
    t0 = tstart
    logs = {}
    stalls_file = None
    while rest and rest[0].startswith("--"):
        if rest[0] == "--since":
            t0 = float(rest[1])
        elif rest[0] == "--log":
            n, f = rest[1].split("=", 1)
            logs[n] = f
        elif rest[0] == "--stalls":
            stalls_file = rest[1]
        rest = rest[2:]
    reps = parse_specs(rest)
    seen = {}
    last = {}
    while time.time() - tstart < timeout:
        for name, port in reps:
            st, g, e = snapshot(port)
            last[name] = (st, g, e)
            if name not in seen and st == "ok" and g >= gen:
                seen[name] = time.time() - t0
        if len(seen) == len(reps) and len({(last[n][1], last[n][2]) for n, _ in reps}) == 1:
            break
        time.sleep(0.02)
    ok = len(seen) == len(reps) and len({(last[n][1], last[n][2]) for n, _ in reps}) == 1
    lag = {}
    for name, _ in reps:
        if name in logs:
            ts = [iso_ts(r["ts"]) for r in read_log(logs[name])
                  if r.get("event") == "keyring_serving" and r["generation"] >= gen]
            if ts:
                lag[name] = max(0.0, min(ts) - t0)
        elif name in seen:
            lag[name] = seen[name]
    stalls = read_stalls(stalls_file)
    adj = {n: l - stalled_within(stalls, t0, t0 + l) for n, l in lag.items()}
    parts = []
    for name, _ in reps:
        st, g, e = last.get(name, ("?", -1, "-"))
        parts.append("%s %s gen %d %s" % (name, ("%.2fs" % lag[name]) if name in lag else "NOT", g, e[:12]))
    print("    generation >= %d: %s" % (gen, "; ".join(parts)))
    if lag:
        w = max(lag, key=lambda n: lag[n])
        note = ""
        if max(adj.values()) < max(lag.values()) - 0.005:
            note = "; %.2f s without the machine stalls" % max(adj.values())
        print("    worst lag %.2f s (%s%s)" % (lag[w], "from the logs" if logs else "polled", note))
    if len(lag) != len(reps) or (adj and max(adj.values()) > timeout):
        ok = False
    return 0 if ok else 1


# ------------------------------------------------------------- timeline


def timing_of(doc):
    t = doc["timing"]
    pa = t.get("publish_ahead", 0) or max(2 * t["max_age"], t["rotate_every"] // 30)
    return t["max_age"], t["token_ttl"], t["leeway"], t["rotate_every"], pa


def cmd_next_due(args):
    doc = json.load(sys.stdin)
    max_age, _, _, every, pa = timing_of(doc)
    best = None
    for alg in sorted({k["alg"] for k in doc["keys"]}):
        act = [k for k in doc["keys"] if k["alg"] == alg and k["state"] == "active"]
        pen = [k for k in doc["keys"] if k["alg"] == alg and k["state"] == "pending"]
        if not act:
            continue
        end = act[0]["activated"] + every
        if pen:
            due, kind = max(end, pen[0]["published"] + max_age), "activate"
        else:
            due, kind = end - pa, "publish"
        if best is None or due < best[0]:
            best = (due, kind)
    print("%d %s" % best)
    return 0


def cmd_retire_due(args):
    doc = json.load(sys.stdin)
    max_age, ttl, leeway, _, _ = timing_of(doc)
    dues = [k["retiring"] + ttl + leeway + max_age for k in doc["keys"] if k["state"] == "retiring"]
    print(min(dues) if dues else 0)
    return 0


def cmd_doc_summary(args):
    doc = json.load(sys.stdin)
    print("generation %d" % doc["generation"])
    for k in doc["keys"]:
        print("%s %s %s" % (k["kid"], k["alg"], k["state"]))
    return 0


def cmd_token_kid(args):
    tok = open(args[0]).read().strip()
    h = tok.split(".")[0]
    print(json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"])
    return 0


# ------------------------------------------------------------ psql/kills


def psql(psql_bin, url, sql, appname="jwtkit-test"):
    env = dict(os.environ, PGAPPNAME=appname)
    p = subprocess.run([psql_bin, url, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, env=env, timeout=20)
    return p.returncode, p.stdout.strip()


def pid_of_local_port(port, pids):
    """The process among pids that owns the TCP socket with local port."""
    inodes = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    fs = line.split()
                    if int(fs[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fs[9])
        except OSError:
            pass
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            pass
    return None


HOLD_SQL = "BEGIN; SELECT 1 FROM jwtkit_keyring WHERE id = 1 FOR UPDATE; SELECT pg_sleep(10); COMMIT"
BLOCKED_SQL = ("SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
               " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO jwtkit_keyring %' LIMIT 1")
CANCEL_SQL = "SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE application_name = 'jwtkit-test-holder'"


def cmd_kill_writer(args):
    """kill-writer PSQL URL AT TIMEOUT (NAME=PID... | --cli JWTKIT KEK)

    At AT - 1.5 s, hold the keyring row (SELECT ... FOR UPDATE in an open
    transaction).  The first process that commits a keyring change after
    that blocks in its transaction on the final write of the metadata:
    after it took the advisory lock, logged its actions and wrote a new
    sealed private key, before COMMIT.  SIGKILL it there (a replica given
    as NAME=PID, or with --cli a `jwtkit keyring rotate --force` started
    here), then release the row.  Prints "KILLED NAME PID EPOCH" or
    "NONE"."""
    psql_bin, url, at, timeout = args[0], args[1], float(args[2]), float(args[3])
    rest = args[4:]
    cli = None
    victims = {}
    if rest and rest[0] == "--cli":
        jwtkit, kek = rest[1], rest[2]
    else:
        for s in rest:
            n, p = s.split("=", 1)
            victims[int(p)] = n
    time.sleep(max(0.0, at - 1.5 - time.time()))
    env = dict(os.environ, PGAPPNAME="jwtkit-test-holder")
    holder = subprocess.Popen([psql_bin, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", HOLD_SQL], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = "NONE"
    try:
        time.sleep(0.3)
        if rest and rest[0] == "--cli":
            time.sleep(max(0.0, at - time.time()))
            cli = subprocess.Popen([jwtkit, "keyring", "rotate", url, "--force", "--kek-file", kek],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            victims = {cli.pid: "cli"}
        deadline = time.time() + timeout
        while time.time() < deadline:
            rc, out = psql(psql_bin, url, BLOCKED_SQL)
            if rc == 0 and out:
                backend, cport = (int(x) for x in out.split("|"))
                pid = pid_of_local_port(cport, list(victims))
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    result = "KILLED %s %d %.3f" % (victims[pid], pid, time.time())
                    break
            time.sleep(0.03)
    finally:
        psql(psql_bin, url, CANCEL_SQL)
        try:
            holder.wait(timeout=15)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        if cli is not None:
            try:
                cli.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cli.kill()
                cli.wait()
    print(result)
    return 0


def cmd_cli_chaos(args):
    """cli-chaos JWTKIT URL KEK N OUTDIR: N times `keyring rotate --force`,
    SIGKILLed after a random 0-350 ms (or left to finish); the output of
    the runs that finished is kept in OUTDIR/chaos-N.out (rc 0 only)."""
    jwtkit, url, kek, n, outdir = args[0], args[1], args[2], int(args[3]), args[4]
    killed = finished = failed = 0
    for i in range(n):
        outf = os.path.join(outdir, "chaos-%d.tmp" % i)
        with open(outf, "w") as f:
            p = subprocess.Popen([jwtkit, "keyring", "rotate", url, "--force", "--kek-file", kek], stdout=f,
                                 stderr=subprocess.STDOUT)
            time.sleep(random.uniform(0.0, 0.35))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            rc = p.wait()
        if rc == -signal.SIGKILL:
            killed += 1
            os.unlink(outf)
        elif rc == 0:
            finished += 1
            os.rename(outf, os.path.join(outdir, "chaos-%d.out" % i))
        else:
            failed += 1
            print("    rotate exited %d: %s" % (rc, open(outf).read().strip()[:300]))
        time.sleep(random.uniform(0.1, 0.4))
    print("    %d rotate runs: %d SIGKILLed, %d finished, %d failed" % (n, killed, finished, failed))
    return 0 if failed == 0 else 1


# ---------------------------------------------------------------- checks

ORDER = {"pending": 0, "active": 1, "retiring": 2, "retired": 3, "revoked": 3}


def cmd_check_samples(args):
    """Every sample: `keyring list` succeeded, exactly one active key and at
    most one pending key per algorithm; across samples a key's state only
    moves forward and a live key never vanishes."""
    recs = [json.loads(l) for l in open(args[0]) if l.strip()]
    bad = []
    last = {}
    nok = 0
    maxkeys = 0
    for r in recs:
        if r["rc"] != 0:
            bad.append("%.1f: keyring list failed (%s): %s" % (r["t"], r["rc"], r["err"]))
            continue
        keys = json.loads(r["out"])
        nok += 1
        maxkeys = max(maxkeys, len(keys))
        per = {}
        for k in keys:
            per.setdefault((k["alg"], k["state"]), []).append(k["kid"])
        for alg in sorted({k["alg"] for k in keys}):
            a, p = per.get((alg, "active"), []), per.get((alg, "pending"), [])
            if len(a) != 1:
                bad.append("%.1f: %d active %s keys: %s" % (r["t"], len(a), alg, a))
            if len(p) > 1:
                bad.append("%.1f: %d pending %s keys: %s" % (r["t"], len(p), alg, p))
        now = {k["kid"]: k["state"] for k in keys}
        for kid, st in now.items():
            if kid in last and ORDER[st] < ORDER[last[kid]]:
                bad.append("%.1f: key %s went back from %s to %s" % (r["t"], kid, last[kid], st))
        for kid, st in last.items():
            if kid not in now and ORDER[st] < 3:
                bad.append("%.1f: %s key %s vanished" % (r["t"], st, kid))
        last = now
    print("    %d samples (%d ok), up to %d keys in the keyring" % (len(recs), nok, maxkeys))
    for b in bad[:10]:
        print("    " + b)
    return 0 if not bad and nok >= 10 else 1


ACTION_RES = [
    ("created", re.compile(r"^created active key (\S+) ")),
    ("published", re.compile(r"^published pending key (\S+) ")),
    ("activated", re.compile(r"^activated key (\S+) ")),
    ("retiring", re.compile(r"^key (\S+) \(\S+\) stopped signing and is retiring")),
    ("retired", re.compile(r"^retired key (\S+) ")),
    ("revoked", re.compile(r"^revoked key (\S+) ")),
]


def classify(line):
    for kind, rx in ACTION_RES:
        m = rx.match(line)
        if m:
            return kind, m.group(1)
    return None, None


def iso_ts(s):
    # 2026-11-28T16:16:54.652Z
    st = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    import calendar
    return calendar.timegm(st) + int(s[20:23]) / 1000.0


def read_log(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if '"event":"keyring_action"' not in line and '"event":"keyring_serving"' not in line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def cmd_check_actions(args):
    """check-actions DOC MIN_ACTIVATIONS MIN_RETIRED CLI_WINDOW_FROM CLI_WINDOW_TO
                     LOG[:killed]... -- CLI_OUTPUT...

    The keyring reports an action only once it is committed, so every
    logged line, a killed replica's included, and the output of CLI runs
    that exited 0 are confirmed actions (LOG:killed only labels the log).
    Pass: no kid has the same confirmed action twice; every confirmed action
    is in the final keyring; every transition recorded in the final keyring
    has a logged action (unless it happened while the CLI runs that were
    SIGKILLed were running); enough natural activations and retirements."""
    doc = json.load(open(args[0]))
    min_act, min_ret = int(args[1]), int(args[2])
    win = (float(args[3]) - 1, float(args[4]) + 1)
    rest = args[5:]
    sep = rest.index("--") if "--" in rest else len(rest)
    logs, clis = rest[:sep], rest[sep + 1:]
    confirmed = {}
    replica_counts = {}
    sources = {}
    bad, notes = [], []
    for spec in logs:
        killed = spec.endswith(":killed")
        path = spec[:-7] if killed else spec
        recs = read_log(path)
        for i, r in enumerate(recs):
            if r.get("event") != "keyring_action":
                continue
            kind, kid = classify(r.get("action", ""))
            if kind is None:
                notes.append("unclassified action in %s: %s" % (os.path.basename(path), r.get("action")))
                continue
            if r.get("kid") != kid:
                bad.append("log kid %s differs from the action's %s" % (r.get("kid"), kid))
            confirmed.setdefault((kid, kind), []).append(os.path.basename(path) + (" (killed)" if killed else ""))
            replica_counts[kind] = replica_counts.get(kind, 0) + 1
    for path in clis:
        for line in open(path):
            kind, kid = classify(line.strip())
            if kind:
                confirmed.setdefault((kid, kind), []).append(os.path.basename(path))
    for (kid, kind), where in sorted(confirmed.items()):
        if len(where) > 1:
            bad.append("%s %s %d times: %s" % (kind, kid, len(where), ", ".join(where)))
    keys = {k["kid"]: k for k in doc["keys"]}
    for (kid, kind) in confirmed:
        if kid not in keys:
            bad.append("confirmed action %s %s but the key is not in the keyring" % (kind, kid))
    missing = tolerated = 0
    for kid, k in keys.items():
        want = []
        if k["activated"] and k["activated"] == k["published"] and k["created"] == k["published"]:
            want.append(("created", k["created"]))
        else:
            want.append(("published", k["published"]))
            if k["activated"]:
                want.append(("activated", k["activated"]))
        if k["retiring"]:
            want.append(("retiring", k["retiring"]))
        if k["state"] == "retired":
            want.append(("retired", k["retired"]))
        if k["state"] == "revoked":
            want.append(("revoked", k["retired"]))
        for kind, t in want:
            if (kid, kind) in confirmed:
                continue
            if win[0] <= t <= win[1]:
                tolerated += 1
            else:
                missing += 1
                bad.append("no log line for %s %s (at %d)" % (kind, kid, t))
    cli_count = sum(1 for v in confirmed.values() for w in v if w.endswith(".out"))
    print("    %d keys in the keyring; confirmed actions by the replicas: %s; by CLI runs: %d" % (
        len(keys), ", ".join("%s %d" % kv for kv in sorted(replica_counts.items())), cli_count))
    if tolerated:
        print("    %d transitions made by SIGKILLed CLI runs (no output)" % tolerated)
    for n in notes[:8]:
        print("    note: " + n)
    if replica_counts.get("activated", 0) < min_act:
        bad.append("only %d activations by the replicas (want >= %d)" % (replica_counts.get("activated", 0), min_act))
    if replica_counts.get("retired", 0) < min_ret:
        bad.append("only %d retirements by the replicas (want >= %d)" % (replica_counts.get("retired", 0), min_ret))
    for b in bad[:12]:
        print("    " + b)
    return 0 if not bad else 1


def lags_of(series, windows, thr, stalls=()):
    """series: name -> sorted [(t, gen)]; windows: name -> [(from, to)] when
    the replica was down.  For every generation: from the first replica
    serving it to each other replica serving it (or a later one)."""
    gens = sorted({g for s in series.values() for _, g in s if g >= 0})
    first = {}
    for name, s in series.items():
        for t, g in s:
            for gg in gens:
                if gg <= g and (gg not in first or t < first[gg]):
                    first[gg] = t
    worst = (0.0, None, None, 0.0)  # (lag without stalls, generation, replica, raw lag)
    measured = 0
    for g in gens[1:]:
        t0 = first[g]
        for name, s in series.items():
            if any(a - 1 <= t0 + thr + 1 and b + 1 >= t0 - 1 for a, b in windows.get(name, [])):
                continue
            ts = [t for t, gg in s if gg >= g and t >= t0 - 0.001]
            if not ts:
                continue
            raw = ts[0] - t0
            lag = raw - stalled_within(stalls, t0, ts[0])
            measured += 1
            if lag > worst[0]:
                worst = (lag, g, name, raw)
    return worst, measured, len(gens)


def cmd_check_converge(args):
    """check-converge POLL EVENTS THRESHOLD MIN_GENS STALLS LOG=NAME...

    Pass: no failed poll of a replica outside the windows in which it was
    killed; one ETag per generation; every replica serves each generation
    within THRESHOLD seconds of the first one (HTTP polls every ~0.1 s;
    the "serving keyring" log lines give the same with ms precision), not
    counting the machine stalls recorded by `ticker` in STALLS."""
    pollf, eventsf, thr, min_gens, stallsf = args[0], args[1], float(args[2]), int(args[3]), args[4]
    logspecs = args[5:]
    stalls = read_stalls(stallsf)
    windows = {}
    opened = {}
    for l in open(eventsf):
        fs = l.split()
        if len(fs) >= 3 and fs[1] == "kill":
            opened[fs[2]] = float(fs[0])
        elif len(fs) >= 3 and fs[1] == "up" and fs[2] in opened:
            windows.setdefault(fs[2], []).append((opened.pop(fs[2]), float(fs[0])))
    for n, t in opened.items():
        windows.setdefault(n, []).append((t, 1e12))
    series, etags, errors = {}, {}, []
    for l in open(pollf):
        fs = l.split()
        if len(fs) < 5:
            continue
        t, name, st, gen, etag = float(fs[0]), fs[1], fs[2], int(fs[3]), fs[4]
        if st != "ok":
            if not any(a - 0.2 <= t <= b for a, b in windows.get(name, [])):
                errors.append("%.2f %s %s" % (t, name, st))
            continue
        series.setdefault(name, []).append((t, gen))
        etags.setdefault(gen, set()).add(etag)
    bad = []
    if errors:
        bad.append("%d failed polls of running replicas, first: %s" % (len(errors), "; ".join(errors[:3])))
    for g, es in sorted(etags.items()):
        if len(es) > 1:
            bad.append("generation %d served with %d different ETags" % (g, len(es)))
    (wl, wg, wn, wr), measured, ngens = lags_of(series, windows, thr, stalls)
    (rl, rg, rn, _), _, _ = lags_of(series, windows, thr)
    if stalls:
        print("    machine stalls (the ticker could not run for > 0.25 s): %d, %.1f s in all, longest %.1f s" % (
            len(stalls), sum(b - a for a, b in stalls), max(b - a for a, b in stalls)))
    print("    HTTP polls: %d generations seen, %d (generation, replica) lags measured; worst lag %.2f s "
          "(generation %s, %s)%s" % (ngens, measured, rl, rg, rn,
                                     "; without the stalls %.2f s (generation %s, %s)" % (wl, wg, wn)
                                     if wl < rl - 0.005 else ""))
    if wl > thr:
        bad.append("worst lag %.2f s > %.1f s" % (wl, thr))
    if ngens < min_gens:
        bad.append("only %d generations seen (want >= %d)" % (ngens, min_gens))
    # the same from the logs ("serving keyring" lines, ms time stamps)
    lseries = {}
    lgen_etag = {}
    for spec in logspecs:
        path, name = spec.split("=", 1)
        for r in read_log(path):
            if r.get("event") == "keyring_serving":
                lseries.setdefault(name, []).append((iso_ts(r["ts"]), r["generation"]))
                lgen_etag.setdefault(r["generation"], set()).add((r["etag"], r.get("kid_ES256")))
    if lseries:
        for n in lseries:
            lseries[n].sort()
        (ll, lg, ln, lr), lm, lgens = lags_of(lseries, windows, thr, stalls)
        (rl2, rg2, rn2, _), _, _ = lags_of(lseries, windows, thr)
        print("    logs: %d generations, %d lags; worst lag %.3f s (generation %s, %s)%s" % (
            lgens, lm, rl2, rg2, rn2,
            "; without the stalls %.3f s (generation %s, %s)" % (ll, lg, ln) if ll < rl2 - 0.0005 else ""))
        if ll > thr:
            bad.append("worst lag in the logs %.3f s > %.1f s" % (ll, thr))
        for g, s in sorted(lgen_etag.items()):
            if len(s) > 1:
                bad.append("generation %d logged with different ETag/kid: %s" % (g, s))
    for b in bad[:10]:
        print("    " + b)
    return 0 if not bad else 1


PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def walk(x, path, found):
    if isinstance(x, dict):
        for k, v in x.items():
            if k in PRIVATE:
                found.append(path + "/" + k)
            walk(v, path + "/" + k, found)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            walk(v, "%s/%d" % (path, i), found)


def cmd_no_private_members(args):
    text = sys.stdin.read().strip()
    if not text:
        print("    empty document")
        return 1
    doc = json.loads(text)
    found = []
    walk(doc, "", found)
    nkeys = len(doc.get("keys", []))
    print("    %d keys in the document; private members: %s" % (nkeys, ", ".join(found) or "none"))
    return 0 if not found and nkeys > 0 else 1


def cmd_jwks_ok(args):
    try:
        d = json.load(open(args[0]))
    except ValueError as e:
        print("    not JSON: %s" % e)
        return 1
    found = []
    walk(d, "", found)
    ok = isinstance(d.get("keys"), list) and len(d["keys"]) > 0 and all(
        k.get("kid") and k.get("kty") == "EC" for k in d["keys"]) and not found
    print("    %d keys%s" % (len(d.get("keys", [])), ("; private members " + ",".join(found)) if found else ""))
    return 0 if ok else 1


def main():
    signal.signal(signal.SIGTERM, on_term)
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = globals().get("cmd_" + cmd.replace("-", "_"))
    if fn is None:
        print("unknown command " + cmd, file=sys.stderr)
        return 2
    return fn(args)


if __name__ == "__main__":
    sys.exit(main())
