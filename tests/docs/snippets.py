#!/usr/bin/env python3
"""Run every fenced block of the project's documents as written.

    snippets.py --src DIR --build DIR [--list] DOC...

Each fenced block in a document carries a note on the line before it:

    <!-- snippet: MODE [ARGS] [key=value ...] -->

MODE says what is done with the block:

  session        a console session: lines starting with "$ " are commands
                 (a line ending in "\\" or "|" continues; a here-document runs
                 to its terminator); the other lines are the documented
                 output, compared with what the command prints (stdout and
                 stderr) after times, kids, tokens and other base64url runs,
                 durations like "(in 14m)" and a literal "..." are allowed
                 to differ.  All commands of a block run in one bash, so
                 "echo $?" and variables work as they do for the reader.
  sh             a shell block, run with bash -e -o pipefail; it must exit 0
                 (or rc=N).
  file NAME      the block is written to NAME in the scratch directory (a
                 configuration the next blocks use).
  check KIND     a configuration checked by the program that reads it:
                 gate (jwtkit gate --check), serve (jwtkit serve --check),
                 nginx (nginx -t, the block placed in http{} or server{} as
                 where=http|server|main says), caddy (caddy validate
                 --adapter caddyfile; skipped without caddy, a failure
                 under CI=true), c (compiled and linked with
                 the library), json (each line one JSON object; "..." may
                 stand for a value).
  usage CMD      a synopsis: every --option in it exists in `jwtkit CMD
                 --help`.
  by TEST [MARK] another test runs this block (tests/... path); the runner
                 checks that TEST exists and names MARK (default: the
                 document's path), so the note cannot point nowhere.
  text           not code: a diagram, a table, measured output.
  skip REASON    not run; the reason is printed in the summary.

Options: fixture=demo (jwtkit serve --demo running in the scratch
directory), fixture=pg (a private PostgreSQL server, its URL in $URL;
skipped when PostgreSQL is not installed, a failure under CI=true),
before=SCRIPT (shell run first in the same bash: the state the document
assumes at that point, written in the note for the reader to see), port=N (a free port replaces 127.0.0.1:N in the block and its
output), cwd=checkout (run in a scratch directory that looks like a
checkout: build/ points at the build tree, var/ is fresh), module=jwtkit
(check nginx: load the built ngx_http_jwtkit_module.so first; skipped when
it is not built, a failure under CI=true; not run when JWTKIT_NO_NGINX_MODULE
says why the build cannot make it), rc=N,
timeout=SECONDS (default 60).

The blocks of one document run in order in one scratch directory, as a
reader following the document would run them.  A block without a note,
or with an unknown mode, fails the run.  Exit 0 when every block passed,
1 otherwise; the last line is a summary.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NOTE = re.compile(r"<!--\s*snippet:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)(```+)\s*([A-Za-z0-9_+-]*)\s*$")


class Skip(Exception):
    """A block that cannot run here (a server that is not installed)."""


class Block:
    def __init__(self, doc, line, lang, text, note, indent):
        self.doc, self.line, self.lang, self.text, self.indent = doc, line, lang, text, indent
        self.mode, self.args, self.opts = None, [], {}
        if note is not None:
            mode, _, rest = note.partition(" ")
            self.mode = mode
            # a reason is free text; other arguments are shell words
            words = [rest.strip()] if mode in ("skip", "text") and rest.strip() else shlex.split(rest)
            for w in (words if mode not in ("skip", "text") else []):
                if "=" in w and not w.startswith("--") and re.match(r"^[a-z]+=", w):
                    k, v = w.split("=", 1)
                    self.opts[k] = v
                else:
                    self.args.append(w)
            if mode in ("skip", "text"):
                self.args = words

    def where(self):
        return "%s:%d" % (self.doc, self.line)


def parse(path, rel):
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3)
        j = i + 1
        while j < len(lines) and not (lines[j].strip() == fence and lines[j].startswith(indent)):
            j += 1
        if j >= len(lines):
            raise SystemExit("%s:%d: unterminated code block" % (rel, i + 1))
        body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
        # the note is one of the HTML comment lines right before the fence
        # (another test's own marker may sit beside it)
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        note = None
        while k >= 0 and lines[k].strip().startswith("<!--"):
            n = NOTE.search(lines[k])
            if n:
                note = n.group(1)
                break
            k -= 1
        blocks.append(Block(rel, i + 1, lang, "\n".join(body) + "\n", note, indent))
        i = j + 1
    return blocks


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --- comparing documented output with real output --------------------------

NORMALISE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<TIME>"),
    (re.compile(r"\b1\d{9}\b"), "<EPOCH>"),
    (re.compile(r"\((in )?\d+[smhd]( ago)?\)|\(now\)"), "(<REL>)"),
    (re.compile(r"[A-Za-z0-9_-]{16,}"), "<B64>"),
]


def normalise(line):
    for rx, rep in NORMALISE:
        line = rx.sub(rep, line)
    return line.rstrip()


def line_matches(expected, actual):
    e, a = normalise(expected), normalise(actual)
    if e == a:
        return True
    if "..." not in e:
        return False
    # "..." in the documented line stands for any text (with the word it ends)
    parts = re.split(r"[A-Za-z0-9_<>-]*\.\.\.", e)
    rx = ".*".join(re.escape(p) for p in parts)
    return re.fullmatch(rx, a) is not None


def lines_match(expected, actual):
    """A documented line that is only "..." stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(lines_match(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and line_matches(expected[0], actual[0]) and lines_match(expected[1:], actual[1:])


def split_session(text):
    """[(command, [expected output lines])] of a console block."""
    out, lines, i = [], text.rstrip("\n").split("\n"), 0
    while i < len(lines):
        l = lines[i]
        if not l.startswith("$ "):
            if not out:
                raise ValueError("output before the first command: %r" % l)
            out[-1][1].append(l)
            i += 1
            continue
        cmd = [l[2:]]
        heredoc = re.search(r"<<-?\s*'?\"?([A-Za-z_]+)'?\"?", l)
        i += 1
        if heredoc:
            term = heredoc.group(1)
            while i < len(lines):
                cmd.append(lines[i])
                i += 1
                if lines[i - 1].strip() == term:
                    break
        else:
            while cmd[-1].rstrip().endswith(("\\", "|", "&&")) and i < len(lines):
                cmd.append(lines[i].lstrip("> ") if lines[i].startswith("> ") else lines[i])
                i += 1
        out.append(("\n".join(cmd), []))
    return out


# --- the runner ---------------------------------------------------------------

class Doc:
    def __init__(self, args, rel):
        self.args, self.rel = args, rel
        self.root = tempfile.mkdtemp(prefix="jwtkit-doc-")
        self.fixtures = {}
        self.ports = {}
        self.env = dict(os.environ)
        self.env["PATH"] = os.path.join(args.build, "cli") + os.pathsep + self.env.get("PATH", "")
        self.env["TMPDIR"] = self.root
        self.env["HOME"] = self.root
        self.env.pop("JWTKIT_PKCS11_PIN", None)
        os.makedirs(os.path.join(self.root, "checkout"))
        os.symlink(args.build, os.path.join(self.root, "checkout", "build"))
        os.makedirs(os.path.join(self.root, "work"))

    def cwd(self, b):
        return os.path.join(self.root, "checkout" if b.opts.get("cwd") == "checkout" else "work")

    def port(self, b, text):
        if "port" not in b.opts:
            return text
        doc_port = b.opts["port"]
        if doc_port not in self.ports:
            self.ports[doc_port] = free_port()
        return text.replace("127.0.0.1:%s" % doc_port, "127.0.0.1:%d" % self.ports[doc_port])

    def fixture(self, b):
        name = b.opts.get("fixture")
        if not name or name in self.fixtures:
            return
        if name == "pg":
            return self.fixture_pg()
        if name != "demo":
            raise RuntimeError("unknown fixture %r" % name)
        port = self.port(b, "127.0.0.1:%s" % b.opts.get("port", "8080"))
        log = open(os.path.join(self.root, "demo.log"), "wb")
        p = subprocess.Popen([os.path.join(self.args.build, "cli", "jwtkit"), "serve", "--demo",
                              "--listen", port], cwd=self.cwd(b), env=self.env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.fixtures[name] = p
        host, prt = port.rsplit(":", 1)
        end = time.time() + 30
        while time.time() < end:
            if p.poll() is not None:
                raise RuntimeError("jwtkit serve --demo exited: %s" % open(log.name).read())
            try:
                socket.create_connection((host, int(prt)), 0.2).close()
                if os.path.exists(os.path.join(self.cwd(b), "var", "demo-client-secret")):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("jwtkit serve --demo did not start")

    def fixture_pg(self):
        """A private PostgreSQL server (tests/pg/pglib.sh) for the rest of the
        document; its URL is $URL.  It stops when the runner closes its stdin."""
        lib = os.path.join(self.args.src, "tests", "pg", "pglib.sh")
        p = subprocess.Popen(["bash", "-c", 'set -euo pipefail; . "$1"; pg_start >&2; echo "$PG_URL"; read -r _ || true',
                              "pg", lib], env=self.env, cwd=self.root, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=open(os.path.join(self.root, "pg.log"), "wb"))
        url = p.stdout.readline().decode().strip()
        if not url:
            rc = p.wait(30)
            if rc == 77:
                raise Skip("PostgreSQL is not installed")
            raise RuntimeError("PostgreSQL did not start: %s" % open(os.path.join(self.root, "pg.log")).read())
        self.fixtures["pg"] = p
        self.env["URL"] = url

    def close(self):
        for name, p in self.fixtures.items():
            if name == "pg":
                p.stdin.close()
                p.wait(60)
                continue
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(10)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, script, b, stdin=None):
        t = int(b.opts.get("timeout", "60"))
        p = subprocess.run(["bash", "-c", script], cwd=self.cwd(b), env=self.env, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=t,
                           start_new_session=True)
        return p.returncode, p.stdout.decode("utf-8", "replace")


def run_session(d, b):
    steps = split_session(d.port(b, b.text))
    script = ["exec 2>&1", b.opts.get("before", "")]
    for n, (cmd, _) in enumerate(steps):
        script.append("__rc=$?; printf '\\n@@snippet-step %d\\n' ; (exit $__rc)" % n)
        script.append(cmd)
    rc, out = d.run("\n".join(script) + "\n", b)
    got = {}
    cur = None
    for l in out.split("\n"):
        m = re.fullmatch(r"@@snippet-step (\d+)", l)
        if m:
            cur = int(m.group(1))
            got[cur] = []
        elif cur is not None:
            got[cur].append(l)
    errors = []
    for n, (cmd, expected) in enumerate(steps):
        actual = got.get(n, [])
        # the marker line starts with a newline: drop the empty line it leaves
        if n + 1 in got or n == len(steps) - 1:
            while actual and actual[-1] == "":
                actual.pop()
        if not lines_match(expected, actual):
            errors.append("$ %s\n  documented:\n%s\n  printed:\n%s" % (
                cmd.split("\n")[0], "\n".join("    " + x for x in expected),
                "\n".join("    " + x for x in actual)))
    return errors


def check_json(text):
    errors = []
    for l in text.split("\n"):
        if not l.strip():
            continue
        try:
            v = json.loads(l)
        except ValueError as e:
            errors.append("not JSON (%s): %s" % (e, l))
            continue
        if not isinstance(v, dict):
            errors.append("not a JSON object: %s" % l)
    return errors


NGINX_MAIN = """pid %(dir)s/nginx.pid;
error_log stderr;
events {}
"""


def check_config(d, b):
    kind = b.args[0] if b.args else ""
    cwd = d.cwd(b)
    text = d.port(b, b.text)
    jwtkit = os.path.join(d.args.build, "cli", "jwtkit")
    if kind == "json":
        return check_json(text)
    if kind in ("gate", "serve"):
        path = os.path.join(cwd, "snippet-%d.conf" % b.line)
        open(path, "w").write(text)
        os.chmod(path, 0o600)
        rc, out = d.run("%s %s --check --config %s" % (shlex.quote(jwtkit), kind, shlex.quote(path)), b)
        return [] if rc == 0 else ["jwtkit %s --check refused it (exit %d):\n%s" % (kind, rc, out)]
    if kind == "nginx":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            return ["nginx is not installed"]
        where = b.opts.get("where", "server")
        load = ""
        if b.opts.get("module") == "jwtkit":  # the module built by `make nginx-module`
            so = os.path.join(d.args.build, "nginx", "ngx_http_jwtkit_module.so")
            why = os.environ.get("JWTKIT_NO_NGINX_MODULE")
            if why:  # a build that cannot make the module (sanitizers): said in the summary
                b.mode, b.args = "skip", ["the nginx module is not built here: %s" % why]
                return []
            if not os.path.exists(so):
                raise Skip("%s is not built (nginx-dev missing?)" % so)
            load = "load_module %s;\n" % so
        conf = load + NGINX_MAIN % {"dir": cwd}
        if where == "main":
            conf = load + "pid %s/nginx.pid;\nerror_log stderr;\n" % cwd + text
        elif where == "http":
            conf += "http {\n" + text + "\n}\n"
        else:
            conf += "http {\nserver {\nlisten 127.0.0.1:%d;\n%s\n}\n}\n" % (free_port(), text)
        path = os.path.join(cwd, "nginx-%d.conf" % b.line)
        open(path, "w").write(conf)
        rc, out = d.run("%s -t -p %s -c %s" % (nginx, shlex.quote(cwd), shlex.quote(path)), b)
        return [] if rc == 0 else ["nginx -t refused it (exit %d):\n%s" % (rc, out)]
    if kind == "caddy":
        caddy = shutil.which("caddy") or "/usr/bin/caddy"
        if not os.path.exists(caddy):
            raise Skip("caddy is not installed (apt-get install caddy)")
        path = os.path.join(cwd, "Caddyfile-%d" % b.line)
        open(path, "w").write(text)
        # its state stays in the scratch directory (HOME is there too)
        rc, out = d.run("XDG_CONFIG_HOME=%s XDG_DATA_HOME=%s %s validate --adapter caddyfile --config %s" % (
            shlex.quote(os.path.join(d.root, "caddy-config")), shlex.quote(os.path.join(d.root, "caddy-data")),
            shlex.quote(caddy), shlex.quote(path)), b)
        return [] if rc == 0 else ["caddy validate refused it (exit %d):\n%s" % (rc, out)]
    if kind == "c":
        src = os.path.join(cwd, "snippet-%d.c" % b.line)
        open(src, "w").write(text)
        inc = "-I%s/include -I%s/include" % (d.args.src, d.args.build)
        cmd = "cc -std=c17 -Wall -Wextra -Werror %s %s -o %s.bin %s/libjwtkit.a -lcrypto -lpthread" % (
            inc, shlex.quote(src), shlex.quote(src), d.args.build)
        rc, out = d.run(cmd, b)
        return [] if rc == 0 else ["does not compile:\n%s" % out]
    return ["unknown check %r" % kind]


def check_usage(d, b):
    cmd = b.args[0] if b.args else ""
    jwtkit = os.path.join(d.args.build, "cli", "jwtkit")
    rc, out = d.run("%s %s --help" % (shlex.quote(jwtkit), cmd), b)
    if rc != 0:
        return ["jwtkit %s --help exited %d" % (cmd, rc)]
    known = set(re.findall(r"--[a-z][a-z0-9-]*", out))
    missing = sorted(set(re.findall(r"--[a-z][a-z0-9-]*", b.text)) - known)
    return ["not in `jwtkit %s --help`: %s" % (cmd, " ".join(missing))] if missing else []


def check_by(d, b):
    if not b.args:
        return ["`by` needs a test path"]
    test = os.path.join(d.args.src, b.args[0])
    if not os.path.isfile(test):
        return ["%s does not exist" % b.args[0]]
    mark = " ".join(b.args[1:]) or b.doc
    if mark not in open(test, encoding="utf-8", errors="replace").read():
        return ["%s does not mention %r" % (b.args[0], mark)]
    return []


def run_block(d, b):
    d.fixture(b)
    if b.mode == "session":
        return run_session(d, b)
    if b.mode == "sh":
        rc, out = d.run("set -e -o pipefail\n" + b.opts.get("before", "") + "\n" + d.port(b, b.text), b)
        want = int(b.opts.get("rc", "0"))
        return [] if rc == want else ["exit %d, expected %d:\n%s" % (rc, want, out)]
    if b.mode == "file":
        if not b.args:
            return ["`file` needs a name"]
        path = os.path.join(d.cwd(b), b.args[0])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write(d.port(b, b.text))
        os.chmod(path, int(b.opts.get("mode", "600"), 8))
        return []
    if b.mode == "check":
        return check_config(d, b)
    if b.mode == "usage":
        return check_usage(d, b)
    if b.mode == "by":
        return check_by(d, b)
    if b.mode in ("text", "skip"):
        return []
    if b.mode is None:
        return ["no <!-- snippet: ... --> note before this block (see tests/docs/snippets.py)"]
    return ["unknown snippet mode %r" % b.mode]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("docs", nargs="+")
    a = ap.parse_args()
    a.src, a.build = os.path.abspath(a.src), os.path.abspath(a.build)
    counts, failed, skipped = {}, 0, []
    for rel in a.docs:
        blocks = parse(os.path.join(a.src, rel), rel)
        if a.list:
            for b in blocks:
                print("%s %s %s" % (b.where(), b.mode, " ".join(b.args)))
            continue
        d = Doc(a, rel)
        try:
            for b in blocks:
                try:
                    errors = run_block(d, b)
                except Skip as e:
                    if os.environ.get("CI") == "true":
                        errors = ["cannot run under CI: %s" % e]
                    else:
                        b.mode, b.args, errors = "skip", [str(e)], []
                except subprocess.TimeoutExpired:
                    errors = ["timed out after %s s" % b.opts.get("timeout", "60")]
                except Exception as e:  # a fixture that cannot start, a bad block
                    errors = ["%s: %s" % (type(e).__name__, e)]
                counts[b.mode] = counts.get(b.mode, 0) + 1
                if b.mode == "skip":
                    skipped.append("%s: %s" % (b.where(), " ".join(b.args)))
                if errors:
                    failed += 1
                    print("FAIL %s (%s)\n%s" % (b.where(), b.mode, "\n".join(errors)))
                else:
                    print("ok   %s (%s%s)" % (b.where(), b.mode, (" " + " ".join(b.args)) if b.args else ""))
        finally:
            d.close()
    if a.list:
        return 0
    for s in skipped:
        print("not run: " + s)
    total = sum(counts.values())
    print("%d blocks in %d documents: %s; %d failed" % (
        total, len(a.docs), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items(), key=lambda x: str(x[0]))),
        failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
