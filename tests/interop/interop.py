"""jwtkit interop suite: jwtkit against PyJWT, jwcrypto and node jose.

    /usr/bin/python3 interop.py --driver PATH [--node-dir DIR | --node-skip REASON]

run.sh is the entry point (it installs the node peer first).  For every
algorithm a peer supports:
  peer->jwtkit  a token the peer signs verifies with jwtkit, same claims;
  jwtkit->peer  a token jwtkit signs verifies with the peer, same claims;
  jwks          the peer loads the JWK Set jwtkit wrote (the key and a
                decoy of the same algorithm) and verifies a jwtkit token by
                its kid (asymmetric algorithms: jwtkit never publishes HMAC
                secrets).
Then bad tokens that every peer rejects must be rejected by jwtkit too;
cases some peer accepts are printed as information, not counted.
Prints a matrix and "interop: N passed, M failed"; exits 1 on any failure.
A peer that is not installed is a SKIP, and a failure under CI=true.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "EdDSA", "Ed448"]
OPTIONAL = {"Ed448"}  # a peer that cannot sign it shows n/a instead of failing
CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
HERE = os.path.dirname(os.path.abspath(__file__))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jdump(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            self.failures.append(what)
        return ok


class Driver:
    def __init__(self, path):
        self.path = path

    def run(self, *args):
        p = subprocess.run([self.path] + list(args), capture_output=True, text=True, timeout=300)
        return p.returncode, p.stdout.strip(), p.stderr.strip()

    def keygen(self, alg, d):
        rc, out, err = self.run("keygen", alg, d)
        if rc != 0:
            raise RuntimeError("keygen %s: %s" % (alg, err))

    def sign(self, alg, d, claims, kid=None):
        args = ["sign", alg, d, claims if isinstance(claims, str) else jdump(claims)]
        if kid is not None:
            args.append(kid)
        rc, out, err = self.run(*args)
        if rc != 0:
            raise RuntimeError("jwtkit sign %s: %s" % (alg, err))
        return out

    def verify(self, alg, d, token, extra=None):
        """(accepted, claims dict or error name)"""
        args = ["verify", alg, d, token] + ([extra] if extra else [])
        rc, out, err = self.run(*args)
        if rc == 0:
            return True, json.loads(out)
        return False, out or ("exit %d: %s" % (rc, err))


class NodePeer:
    name = "jose"

    def __init__(self, node_dir):
        self.dir = node_dir
        with open(os.path.join(node_dir, "node_modules", "jose", "package.json")) as f:
            self.version = json.load(f)["version"]

    def batch(self, reqs):
        if not reqs:
            return []
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(reqs, f)
            name = f.name
        try:
            p = subprocess.run(["node", os.path.join(self.dir, "peer.mjs"), name], capture_output=True, text=True,
                               timeout=300)
        finally:
            os.unlink(name)
        if p.returncode != 0:
            return [{"ok": False, "error": "node peer failed: " + p.stderr.strip()[:300]}] * len(reqs)
        return json.loads(p.stdout)


class PyPeer:
    def __init__(self, impl):
        self.impl = impl
        self.name = impl.name
        self.version = impl.version

    def batch(self, reqs):
        return [self.impl.handle(r) for r in reqs]


def load_peers(args, tally):
    peers, skips = [], []
    sys.dont_write_bytecode = True
    sys.path.insert(0, HERE)
    import peers as pymod
    for cls, pkg in ((pymod.PyJWT, "python3-jwt"), (pymod.Jwcrypto, "python3-jwcrypto")):
        try:
            peers.append(PyPeer(cls()))
        except ImportError as e:
            skips.append((cls.name, "not installed (%s; apt-get install %s): %s" % (sys.executable, pkg, e)))
    if args.node_dir:
        try:
            peers.append(NodePeer(args.node_dir))
        except (OSError, ValueError, KeyError) as e:
            skips.append(("jose", "node peer unusable: %s" % e))
    else:
        skips.append(("jose", args.node_skip or "node peer not set up"))
    for name, why in skips:
        print("SKIP: %s: %s%s" % (name, why, " (a failure under CI=true)" if CI else ""))
        if CI:
            tally.check(False, "peer %s skipped under CI: %s" % (name, why))
    return peers


# ----------------------------------------------------------- bad tokens

def der_of_raw(sig):
    w = len(sig) // 2

    def integer(b):
        b = b.lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b

    body = integer(sig[:w]) + integer(sig[w:])
    ln = bytes([len(body)]) if len(body) < 0x80 else b"\x81" + bytes([len(body)])
    return b"\x30" + ln + body


def split(tok):
    h, p, s = tok.split(".")
    return h, p, s


def with_sig(tok, sig_b64):
    h, p, _ = split(tok)
    return "%s.%s.%s" % (h, p, sig_b64)


def hs_token(header_text, payload, key, alg="HS256"):
    """HMAC-signed token from a raw header text and a claims dict (or raw
    claims text)."""
    h = b64e(header_text.encode())
    p = b64e((payload if isinstance(payload, str) else jdump(payload)).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(key, ("%s.%s" % (h, p)).encode(), digest).digest()
    return "%s.%s.%s" % (h, p, b64e(mac))


ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def trailing_bits(sig_b64):
    """Same bytes, but unused trailing bits set: not canonical."""
    if len(sig_b64) % 4 == 0:
        return None
    v = ALPHA.index(sig_b64[-1])
    return sig_b64[:-1] + ALPHA[v | 1]


class Case:
    """A bad token: jwtkit verifies it with `extra` algorithms allowed
    besides alg; peers run `op` allowing `algorithms` (default [alg]).
    required: every peer rejects it, so it is counted."""

    def __init__(self, name, alg, token, extra, op, algorithms, required):
        self.name, self.alg, self.token, self.extra = name, alg, token, extra
        self.op, self.algorithms, self.required = op, algorithms, required
        self.peers = {}


def bad_cases(drv, dirs, now, base_claims):
    cases = []

    def tok(alg, claims=None, kid=None):
        return drv.sign(alg, dirs[alg], claims or base_claims("bad-" + alg), kid)

    def kid_of(alg):
        with open(os.path.join(dirs[alg], "jwk.json")) as f:
            return json.load(f).get("kid")

    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        h, p, _ = split(tok(alg))
        cases.append(Case("alg-none", alg, "%s.%s." % (b64e(b'{"alg":"none","typ":"JWT"}'), p), None, "verify", None, True))
        cases.append(Case("alg-NONE", alg, "%s.%s." % (b64e(b'{"alg":"NONE","typ":"JWT"}'), p), None, "verify", None, True))
        cases.append(Case("empty-signature", alg, "%s.%s." % (h, p), None, "verify", None, True))
    for alg in ("RS256", "ES256", "EdDSA"):
        with open(os.path.join(dirs[alg], "pub.pem"), "rb") as f:
            pem = f.read()
        t = hs_token(jdump({"alg": "HS256", "typ": "JWT", "kid": kid_of(alg)}), base_claims("confusion"), pem)
        cases.append(Case("hs256-keyed-with-public-pem", alg, t, "HS256", "verify", [alg, "HS256"], True))
    for alg in ("HS256", "RS256", "ES256", "EdDSA"):
        c = dict(base_claims("expired"), iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        cases.append(Case("expired", alg, tok(alg, c), None, "verify", None, True))
        c = dict(base_claims("early"), iat=now, nbf=now + 3600, exp=now + 7200)
        cases.append(Case("not-yet-valid", alg, tok(alg, c), None, "verify", None, True))
    for alg in ALGS:
        t = tok(alg)
        sig = bytearray(b64d(split(t)[2]))
        sig[len(sig) // 2] ^= 0x01
        cases.append(Case("tampered-signature", alg, with_sig(t, b64e(bytes(sig))), None, "verify", None, True))
    for alg in ("ES256", "ES384", "ES512"):
        t = tok(alg)
        cases.append(Case("ecdsa-der-signature", alg, with_sig(t, b64e(der_of_raw(b64d(split(t)[2])))), None, "verify",
                      None, True))
    for alg in ("RS256", "ES256", "EdDSA"):
        cases.append(Case("unknown-kid", alg, tok(alg, kid="no-such-kid"), None, "verify_jwks", None, True))
        with open(os.path.join(dirs[alg], "jwks.json")) as f:
            decoy = [k["kid"] for k in json.load(f)["keys"] if k["kid"] != kid_of(alg)][0]
        cases.append(Case("kid-of-another-key", alg, tok(alg, kid=decoy), None, "verify_jwks", None, True))
    cases.append(Case("four-segments", "HS256", tok("HS256") + ".e30", None, "verify", None, True))
    c = dict(base_claims("exp-string"), exp=str(now + 600))
    cases.append(Case("exp-as-string", "HS256", tok("HS256", c), None, "verify", None, False))

    # candidates that not every peer rejects (kept as information)
    for alg in ("HS256", "ES256", "EdDSA", "RS256"):
        t = tok(alg)
        nb = trailing_bits(split(t)[2])
        if nb:
            cases.append(Case("sig-trailing-bits-set", alg, with_sig(t, nb), None, "verify", None, False))
        s = split(t)[2]
        if len(s) % 4:
            cases.append(Case("sig-with-padding", alg, with_sig(t, s + "=" * (-len(s) % 4)), None, "verify", None, False))
    for _ in range(20):  # a signature with '-' or '_' to swap for the standard alphabet
        t = tok("RS256")
        s = split(t)[2]
        if "-" in s or "_" in s:
            cases.append(Case("sig-standard-base64-alphabet", "RS256", with_sig(t, s.replace("-", "+").replace("_", "/")),
                          None, "verify", None, False))
            break
    with open(os.path.join(dirs["HS256"], "secret.bin"), "rb") as f:
        secret = f.read()
    cases.append(Case("crit-unknown-extension", "HS256",
                  hs_token(jdump({"alg": "HS256", "typ": "JWT", "crit": ["x-jwtkit"], "x-jwtkit": True}),
                           base_claims("crit"), secret), None, "verify", None, False))
    cases.append(Case("duplicate-header-alg", "HS256",
                  hs_token('{"alg":"none","typ":"JWT","alg":"HS256"}', base_claims("dup"), secret), None, "verify",
                  None, False))
    cases.append(Case("duplicate-claim-sub", "HS256",
                  hs_token('{"alg":"HS256","typ":"JWT"}', '{"sub":"alice","exp":%d,"sub":"admin"}' % (now + 600),
                           secret), None, "verify", None, False))
    return cases


# ----------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--node-dir")
    ap.add_argument("--node-skip")
    ap.add_argument("--work")
    args = ap.parse_args()
    tally = Tally()
    drv = Driver(args.driver)
    peers = load_peers(args, tally)
    work = args.work or tempfile.mkdtemp(prefix="jwtkit-interop-")
    now = int(time.time())

    def base_claims(tag):
        return {"iss": "jwtkit-interop", "sub": "interop-" + tag, "iat": now, "nbf": now - 5, "exp": now + 600,
                "jti": secrets.token_hex(8), "name": "Zo\u00eb \u2713 \U0001f511", "n": [1, 2.5, True, None],
                "obj": {"a": "b/c\"d"}}

    dirs = {}
    for alg in ALGS:
        dirs[alg] = os.path.join(work, alg)
        try:
            drv.keygen(alg, dirs[alg])
        except Exception as e:
            tally.check(False, str(e))
            print("FATAL: %s" % e)
            print("interop: %d passed, %d failed" % (tally.passed, tally.failed))
            return 1

    # peers sign, jwtkit verifies
    cells = {}  # (peer, alg) -> [p2j, j2p, jwks]
    signed = {}
    for peer in peers:
        reqs = [{"op": "sign", "alg": a, "dir": dirs[a], "claims": base_claims(peer.name + "-" + a)} for a in ALGS]
        for r, res in zip(reqs, peer.batch(reqs)):
            signed[(peer.name, r["alg"])] = (r, res)
    for peer in peers:
        for alg in ALGS:
            req, res = signed[(peer.name, alg)]
            if not res["ok"] and alg in OPTIONAL:
                cells[(peer.name, alg)] = ["n/a", "n/a", "n/a"]
                continue
            cell = ["?", "?", "?" if not alg.startswith("HS") else "-"]
            cells[(peer.name, alg)] = cell
            if not res["ok"]:
                tally.check(False, "%s cannot sign %s: %s" % (peer.name, alg, res["error"]))
                cell[0] = "FAIL"
                continue
            ok, got = drv.verify(alg, dirs[alg], res["token"])
            good = ok and got == req["claims"]
            cell[0] = "ok" if good else "FAIL"
            tally.check(good, "%s -> jwtkit %s: %s" % (peer.name, alg, got if not ok else "claims differ: %r" % got))

    # jwtkit signs, peers verify (with the key, and through the JWK Set)
    jtok = {}
    for alg in ALGS:
        c = base_claims("jwtkit-" + alg)
        jtok[alg] = (c, drv.sign(alg, dirs[alg], c))
    cases = bad_cases(drv, dirs, now, base_claims)
    for peer in peers:
        reqs, where = [], []
        for alg in ALGS:
            if cells[(peer.name, alg)][0] == "n/a":
                continue
            reqs.append({"op": "verify", "alg": alg, "dir": dirs[alg], "token": jtok[alg][1]})
            where.append(("j2p", alg))
            if not alg.startswith("HS"):
                reqs.append({"op": "verify_jwks", "alg": alg, "dir": dirs[alg], "token": jtok[alg][1]})
                where.append(("jwks", alg))
        for case in cases:
            if cells[(peer.name, case.alg)][0] == "n/a":
                continue
            r = {"op": case.op, "alg": case.alg, "dir": dirs[case.alg], "token": case.token}
            if case.algorithms:
                r["algorithms"] = case.algorithms
            reqs.append(r)
            where.append(("bad", case))
        for (kind, key), res in zip(where, peer.batch(reqs)):
            if kind == "bad":
                key.peers[peer.name] = res
                continue
            alg = key
            col = 1 if kind == "j2p" else 2
            good = res["ok"] and res["claims"] == jtok[alg][0]
            cells[(peer.name, alg)][col] = "ok" if good else "FAIL"
            tally.check(good, "jwtkit -> %s %s (%s): %s" % (peer.name, alg, kind,
                                                             res.get("error") or "claims differ: %r" % res["claims"]))

    # ------------------------------------------------------------ report
    print()
    print("interop matrix  (p>j: peer signs, jwtkit verifies;  j>p: jwtkit signs, peer verifies;")
    print("                 jwks: peer verifies a jwtkit token through jwtkit's JWK Set, by kid)")
    head = "%-7s" % "alg"
    for peer in peers:
        head += " | %-22s" % ("%s %s" % (peer.name, peer.version))
    print(head)
    print("%-7s" % "" + "".join(" | %-22s" % "p>j   j>p   jwks" for _ in peers))
    for alg in ALGS:
        line = "%-7s" % alg
        for peer in peers:
            c = cells[(peer.name, alg)]
            line += " | %-22s" % ("%-5s %-5s %-5s" % tuple(c))
        print(line)

    print()
    print("bad tokens  (every peer rejects them; jwtkit must too)")
    print("%-29s %-6s %-18s %s" % ("case", "alg", "jwtkit", "  ".join("%-9s" % p.name for p in peers)))
    info_lines = []
    for case in cases:
        name, alg, required, peer_res = case.name, case.alg, case.required, case.peers
        ok, got = drv.verify(alg, dirs[alg], case.token, case.extra)
        jw = "ACCEPTED" if ok else got
        cols = []
        peers_reject = True
        for peer in peers:
            res = peer_res.get(peer.name)
            if res is None:
                cols.append("n/a")
                continue
            cols.append("rejects" if not res["ok"] else "ACCEPTS")
            peers_reject &= not res["ok"]
        line = "%-29s %-6s %-18s %s" % (name, alg, jw, "  ".join("%-9s" % c for c in cols))
        if required:
            print(line)
            tally.check(not ok, "jwtkit accepts bad token %s/%s" % (name, alg))
            for peer in peers:
                res = peer_res.get(peer.name)
                if res is not None:
                    tally.check(not res["ok"], "%s accepts bad token %s/%s (the case assumes every peer rejects it)"
                                % (peer.name, name, alg))
        else:
            info_lines.append(line)
    if info_lines:
        print()
        print("information, not counted (candidates some peer accepts; jwtkit's verdict shown)")
        for line in info_lines:
            print(line)

    if tally.failures:
        print()
        for f in tally.failures:
            print("FAIL: %s" % f)
    print()
    print("interop: %d passed, %d failed" % (tally.passed, tally.failed))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
