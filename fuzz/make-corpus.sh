#!/bin/bash
# Build the seed corpora fuzz/corpus-<harness>/ from the shared vectors.
#
#   fuzz/make-corpus.sh [VECTORS_DIR]
#
# VECTORS_DIR defaults to $JWTKIT_VECTORS or ../shared/vectors beside the
# checkout.  Seeds are named by the SHA-1 of their content, so running the
# script again adds nothing twice and never removes what the fuzzer found.
# Needs Debian's /usr/bin/python3 (python3-cryptography converts the RFC
# JWKs into PEM/DER seeds; without it those seeds are left out).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
vec="${1:-${JWTKIT_VECTORS:-$root/../shared/vectors}}"
if [ ! -d "$vec/rfc" ] || [ ! -d "$vec/wycheproof" ]; then
  echo "make-corpus: no vectors in $vec (set JWTKIT_VECTORS or pass the directory)" >&2
  exit 2
fi
py=/usr/bin/python3
[ -x "$py" ] || py=python3

exec "$py" - "$vec" "$here" <<'PYEOF'
import base64, hashlib, json, os, sys

vec, out = sys.argv[1], sys.argv[2]
counts = {}

def put(h, data, key=None):
    """Seed named by the SHA-1 of its content, or of key for seeds that
    differ on every run (encrypted PEMs have a random salt)."""
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, "corpus-" + h)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(key.encode() if key else data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
        counts[h] = counts.get(h, 0) + 1

def load(rel):
    with open(os.path.join(vec, rel), encoding="utf-8") as f:
        return json.load(f)

def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)

def is_jwk(o):
    return isinstance(o, dict) and "kty" in o

jwks_sets, jwks_list, payloads, tokens = [], [], [], []

# ------------------------------------------------------------- RFC files
for name in sorted(os.listdir(os.path.join(vec, "rfc"))):
    if not name.endswith(".json"):
        continue
    doc = load("rfc/" + name)
    def walk(o):
        if isinstance(o, dict):
            if is_jwk(o):
                jwks_list.append(o)
            if isinstance(o.get("keys"), list):
                jwks_sets.append(o)
            for k, v in o.items():
                if k == "compact" and isinstance(v, str) and v:
                    tokens.append(v)
                elif k in ("payload_utf8", "protected_header_utf8") and isinstance(v, str):
                    payloads.append(v)
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(doc)

# ------------------------------------------------------- Wycheproof JWS/JWK
jws = load("wycheproof/json_web_signature_test.json")
for g in jws["testGroups"]:
    for k in ("private", "public"):
        v = g.get(k)
        if is_jwk(v):
            jwks_list.append(v)
        elif isinstance(v, dict) and isinstance(v.get("keys"), list):
            jwks_sets.append(v)
    for t in g["tests"]:
        tokens.append(t["jws"])
jwk = load("wycheproof/json_web_key_test.json")
for g in jwk["testGroups"]:
    for k in ("private", "public"):
        v = g.get(k)
        if isinstance(v, dict) and isinstance(v.get("keys"), list):
            jwks_sets.append(v)
            jwks_list.extend(x for x in v["keys"] if is_jwk(x))
        elif is_jwk(v):
            jwks_list.append(v)
    for t in g["tests"]:
        tokens.append(t["jws"])

# ------------------------------------- Wycheproof signature files: keys
pems, ders = [], []
for name in sorted(os.listdir(os.path.join(vec, "wycheproof"))):
    if not name.endswith("_test.json") or name.startswith("json_web") or name.startswith("hmac"):
        continue
    doc = load("wycheproof/" + name)
    # the groups of one file share a structure: a few keys per file cover it
    # (more only slow the corpus load down: a PEM import costs milliseconds)
    for g in doc.get("testGroups", [])[:12]:
        for k in ("publicKeyJwk", "keyJwk"):
            if is_jwk(g.get(k)):
                jwks_list.append(g[k])
        if isinstance(g.get("publicKeyPem"), str):
            pems.append(g["publicKeyPem"])
        if isinstance(g.get("publicKeyDer"), str):
            ders.append(bytes.fromhex(g["publicKeyDer"]))

# ---------------------------------------------------------------- tokens
for t in tokens:
    put("token", t)
    parts = t.split(".")
    for p in parts:
        put("b64url", p)
    if len(parts) == 3 and not t.startswith("{"):
        for p in parts[:2]:
            try:
                put("json", b64d(p))
            except Exception:
                pass

# claims JSON texts (also used by the round-trip mode of the token harness)
claims = [p for p in payloads if p.lstrip().startswith("{")]
claims += [
    '{"sub":"alice","iss":"https://issuer.example","aud":"api","exp":1700000600,"iat":1700000000,"jti":"x"}',
    '{"sub":"alice","aud":["api","https://api.example"],"exp":1700000000.5,"nbf":1699999999.25}',
    '{"aud":["other",1],"exp":"1700000600","iat":-1.5,"nbf":999999999999999}',
    '{"exp":1e9,"iat":0.000,"sub":"\\u0061lice","iss":"https:\\/\\/issuer.example"}',
    '{"a":{"b":[true,false,null,-0,1.5e-3,"\\ud83d\\ude00"]},"jti":""}',
    '{}',
]
for i, c in enumerate(claims):
    put("json", c)
    put("token", bytes([i % 32]) + c.encode())
    put("token", bytes([(i * 5 + 13) % 32]) + c.encode())
    for knobs in (b"\x00\x00\x00\x00\x00\x00\x00\x00", b"\xff\xff\x33\x00\x00\x00\x00\x01",
                  b"\x13\x85\xff\x10\x0e\x00\x00\x00", b"\x61\x44\x00\x58\x02\x00\x00\x00"):
        put("claims", knobs + c.encode())

# ------------------------------------------------------------ JWK / JWKS
seen = set()
uniq = []
for k in jwks_list:
    s = compact(k)
    if s not in seen:
        seen.add(s)
        uniq.append(k)
for k in uniq:
    put("jwk", compact(k))
    put("json", json.dumps(k, indent=1))
for s in jwks_sets:
    put("jwks", compact(s))
for i in range(0, len(uniq), 3):
    put("jwks", compact({"keys": uniq[i:i + 3]}))
put("jwks", '{"keys":[]}')
put("jwks", '{"keys":[1,"x",{"kty":"oct","k":"AAAA"},{}]}')

# ------------------------------------------------------------------ PEM
for p in pems:
    put("pem", p)
for d in ders:
    put("pem", d)
try:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, ed448, rsa

    def i(s):
        return int.from_bytes(b64d(s), "big")

    def private_key(j):
        if j.get("kty") == "EC" and "d" in j:
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}.get(j.get("crv"))
            return curve and ec.derive_private_key(i(j["d"]), curve)
        if j.get("kty") == "OKP" and "d" in j:
            cls = {"Ed25519": ed25519.Ed25519PrivateKey, "Ed448": ed448.Ed448PrivateKey}.get(j.get("crv"))
            return cls and cls.from_private_bytes(b64d(j["d"]))
        if j.get("kty") == "RSA" and all(x in j for x in ("n", "e", "d", "p", "q", "dp", "dq", "qi")):
            pub = rsa.RSAPublicNumbers(i(j["e"]), i(j["n"]))
            return rsa.RSAPrivateNumbers(i(j["p"]), i(j["q"]), i(j["d"]), i(j["dp"]), i(j["dq"]), i(j["qi"]),
                                         pub).private_key()
        return None

    enc = ser.BestAvailableEncryption(b"fuzz-pass")
    for j in uniq:
        try:
            k = private_key(j)
        except Exception:
            k = None
        if k is None:
            continue
        E, F = ser.Encoding, ser.PrivateFormat
        forms = [(E.PEM, F.PKCS8, ser.NoEncryption()), (E.PEM, F.PKCS8, enc), (E.DER, F.PKCS8, ser.NoEncryption())]
        if not isinstance(k, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
            forms += [(E.PEM, F.TraditionalOpenSSL, ser.NoEncryption()), (E.PEM, F.TraditionalOpenSSL, enc),
                      (E.DER, F.TraditionalOpenSSL, ser.NoEncryption())]
        for e, f, c in forms:
            tag = None if c is not enc else "encrypted %s %s %s" % (e.name, f.name, compact(j))
            put("pem", k.private_bytes(e, f, c), tag)
        pk = k.public_key()
        put("pem", pk.public_bytes(E.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
        put("pem", pk.public_bytes(E.DER, ser.PublicFormat.SubjectPublicKeyInfo))
        if isinstance(k, rsa.RSAPrivateKey):
            put("pem", pk.public_bytes(E.PEM, ser.PublicFormat.PKCS1))
except ImportError:
    print("make-corpus: python3-cryptography missing: no private PEM/DER seeds", file=sys.stderr)

# -------------------------------------------------------------- keyring
pub = [k for k in uniq if k.get("kty") in ("EC", "OKP", "RSA")]
def pubonly(k):
    drop = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    return {a: b for a, b in k.items() if a not in drop}
algs = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA", "Ed448": "EdDSA"}
states = ["retiring", "retired", "revoked", "active", "pending"]
timing = {"max_age": 300, "token_ttl": 900, "leeway": 60, "rotate_every": 2592000, "publish_ahead": 0,
          "rsa_bits": 2048}
for n in range(1, 5):
    keys = []
    for idx, k in enumerate(pub[(n - 1) * 3:(n - 1) * 3 + n]):
        alg = k.get("alg") or algs.get(k.get("crv"), "RS256")
        if alg not in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"):
            continue
        kid = "kid-%d-%d" % (n, idx)
        j = dict(pubonly(k), kid=kid, alg=alg, use="sig")
        st = states[(n + idx) % (3 if n < 4 else 5)]
        t0 = 1690000000 + 1000 * idx
        keys.append({"kid": kid, "alg": alg, "state": st, "file": hashlib.sha256(kid.encode()).hexdigest()[:43],
                     "created": t0, "published": t0, "activated": t0 + 300 if st != "pending" else 0,
                     "retiring": t0 + 5000 if st in ("retiring", "retired", "revoked") else 0,
                     "retired": t0 + 9000 if st in ("retired", "revoked") else 0, "jwk": j})
    meta = {"format": "jwtkit-keyring", "version": 1, "generation": n, "encrypted": n == 3, "timing": timing,
            "keys": keys}
    put("keyring", compact(meta) + "\n")
    put("json", compact(meta))
put("keyring", '{"format":"jwtkit-keyring","version":1,"generation":0,"encrypted":false,"timing":'
    + compact(timing) + ',"keys":[]}\n')

for h in sorted(counts):
    print("make-corpus: %-8s +%d seeds" % (h, counts[h]))
if not counts:
    print("make-corpus: corpora already complete")
PYEOF
