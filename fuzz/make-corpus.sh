#!/bin/bash
# Build the seed corpora fuzz/corpus-<harness>/ from the shared vectors
# (the library harnesses) and from docs/serve.md, docs/gateway.md and
# hand-written inputs (the service harnesses).
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
py=/usr/bin/python3
[ -x "$py" ] || py=python3

# Seeds of the service harnesses (serve_*, gate_*, ui_*), which need no vectors:
# the example files of docs/serve.md and docs/gateway.md, and hand-written
# configurations and requests that use the harnesses' fixed clients, keys
# and clock (fuzz/fuzz_serve_http.c, fuzz/fuzz_gate_request.c).
"$py" - "$root" "$here" <<'PYEOF'
import base64, hashlib, json, os, re, sys

root, out = sys.argv[1], sys.argv[2]
counts = {}

def put(h, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(out, "corpus-" + h)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
        counts[h] = counts.get(h, 0) + 1

def doc(name):
    try:
        with open(os.path.join(root, "docs", name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""

def ini_blocks(text):
    return [textwrap_dedent(m) for m in re.findall(r"```ini\n(.*?)```", text, re.S)]

def textwrap_dedent(block):
    lines = block.split("\n")
    pad = min((len(l) - len(l.lstrip(" ")) for l in lines if l.strip()), default=0)
    return "\n".join(l[pad:] for l in lines)

# ---------------------------------------------------------- serve config
serve_md = doc("serve.md")
for b in ini_blocks(serve_md):
    put("serve_clients" if "[client " in b else "serve_config", b)
defaults = []
for m in re.finditer(r"^\| `([a-z_0-9]+)`(?: / `([a-z_0-9]+)`)? \| `([^`|]+)` \|", serve_md, re.M):
    defaults.append("%s = %s" % (m.group(1), m.group(3)))
    put("serve_config", "%s = %s\n" % (m.group(1), m.group(3)))
if defaults:
    put("serve_config", "# the defaults of docs/serve.md\n" + "\n".join(defaults) + "\n")
for c in [
    "listen = 127.0.0.1:8443\nissuer = https://id.example.com/tenant\nkeyring = /var/lib/jwtkit/keyring\n"
    "clients = /etc/jwtkit/clients.conf\nalgs = ES256, EdDSA\nalg = RS256\nrotate_check = 30s\nmax_age = 5m\n"
    "token_ttl = 15m\nrotate_every = 30d\ntransition_ttl = 5m\nthread_pool = 4\nmax_connections = 1024\n"
    "log_level = debug\npassphrase_file = /etc/jwtkit/passphrase\n",
    "; comments\n# and blanks\n\n  listen\t=\t[::1]:8080  \r\nissuer=http://[::1]:8080\r\n",
    "keyring = postgres://jwtkit@db.example/keys?sslmode=require\nkek_env = JWTKIT_KEK\npassphrase_env = PASS\n",
    "legacy_hs256_secret_file = /etc/jwtkit/legacy-hs256.key\nalg = RS256\ntransition_ttl = 300\n",
    "listen = localhost:1\nissuer = https://a.example/\nmax_age = 0\ntoken_ttl = 366d\nrotate_every = 2w\n",
    "demo = true\n", "[section]\n", "alg = HS256\n", "algs = ES256 ES256\n", "max_age = 1e3\n",
    "listen = 1.2.3.4:65536\n", "issuer = https://user@host/\n", "kek_file = /k\nkek_env = K\n",
]:
    put("serve_config", c)

# ------------------------------------------------- PKCS#11 URIs (p11uri)
for m in re.finditer(r"pkcs11:[^\s\"'`|)]*", doc("pkcs11.md")):
    put("p11uri", m.group(0))
for u in [
    "pkcs11:token=jwtkit;object=issuer-2026-12;id=%01%02?pin-source=/run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
    "pkcs11:object=my%20key;type=private;manufacturer=Snake%20Oil,%20Inc.;serial=42;model=m;"
    "library-manufacturer=L;library-description=D;library-version=2.6;slot-id=18;slot-description=S;slot-manufacturer=M",
    "pkcs11:?pin-source=file:///etc/pin&module-name=softhsm2", "pkcs11:", "PKCS11:object=a&b;type=public",
    "pkcs11:token=%7E;object=:[]@!$'()*+,=", "pkcs11:?pin-value=1234", "pkcs11:id=abc;id=def", "pkcs11:x-a=1",
]:
    put("p11uri", u)

# --------------------------------------------------------- serve clients
HASH = "sha256$u-dYrzAY-Sm9Md-z074Hjg$PA7m0AvCTcjiLeqUA6LMlLP0eW8gKbyqkcJceYBok88"
for c in [
    "[client a]\nsecret_hash = %s\naudience = https://api.example\n" % HASH,
    "[client z.z]\nsecret_hash = %s\naudience = x\n\n[client a_b~c-d]\nsecret_hash = %s\naudience = y\n"
    "audience = z\nscope = s1 s2 s1\nttl = 1h\nalg = PS384\ndisabled = yes\n" % (HASH, HASH),
    "[ client\tspaced ]\nsecret_hash=%s\naudience=\u00e9t\u00e9\n" % HASH,
    "[client dup]\nsecret_hash = %s\naudience = a\n[client dup]\nsecret_hash = %s\naudience = a\n" % (HASH, HASH),
    "[client p]\nsecret_hash = plaintext-secret\naudience = a\n",
    "[client q]\nsecret_hash = %s\naudience = a\nscopes = bad\"scope\n" % HASH,
    "[client r]\nsecret_hash = %s\n" % HASH, "audience = outside\n",
]:
    put("serve_clients", c)

# ------------------------------------------------------------ serve http
SECRETS = {"svc-a": "secret-of-svc-a-0123456789-abcdefghijklmnop",
           "svc.b": "secret-of-svc.b-0123456789-abcdefghijklmnop",
           "off": "secret-of-off-000-0123456789-abcdefghijklmno",
           "c384": "secret-of-c384-00-0123456789-abcdefghijklmn"}
FORM = "Content-Type: application/x-www-form-urlencoded\n"

def basic(user, secret):
    return "Authorization: Basic " + base64.b64encode(("%s:%s" % (user, secret)).encode()).decode() + "\n"

def post(path, headers, body):
    return "POST %s\n%s\n%s" % (path, headers, body)

GRANT = "grant_type=client_credentials"
for name, sec in SECRETS.items():
    put("serve_http", post("/token", FORM + basic(name, sec), GRANT))
    put("serve_http", post("/tenant/token", FORM, "%s&client_id=%s&client_secret=%s" % (GRANT, name, sec)))
for r in [
    post("/token", FORM + basic("svc-a", SECRETS["svc-a"]), GRANT + "&scope=read+write"),
    post("/token", FORM + basic("svc-a", SECRETS["svc-a"]), GRANT + "&scope=admin%3Aall%20read&client_id=svc-a"),
    post("/token", FORM + basic("svc%2Da", SECRETS["svc-a"]), GRANT + "&scope=nope"),
    post("/token", FORM + basic("svc-a", SECRETS["svc-a"]) + basic("svc-a", SECRETS["svc-a"]), GRANT),
    post("/token", FORM + basic("svc-a", SECRETS["svc-a"]), GRANT + "&client_secret=x"),
    post("/token", FORM + basic("svc.b", "wrong"), GRANT),
    post("/token", FORM + "Authorization: Bearer abc\n", GRANT),
    post("/token", FORM, "grant_type=password&client_id=svc.b&client_secret=" + SECRETS["svc.b"]),
    post("/token", FORM, GRANT + "&" + GRANT),
    post("/token", FORM, "client_secret=" + SECRETS["svc.b"] + "&" + GRANT),
    post("/token", FORM + "Content-Length: 99999\n", GRANT),
    post("/token", "Content-Type: application/x-www-form-urlencoded; charset=UTF-8\nContent-Length: 29\n", GRANT),
    post("/token", "Content-Type: application/json\n", "{}"),
    post("/token", FORM, "a=%ZZ&=x&b"),
    "GET /token\n\n",
    "GET /.well-known/jwks.json\nIf-None-Match: \"x\", W/\"y\"\n\n",
    "HEAD /.well-known/jwks.json\nIf-None-Match: *\n\n",
    "GET /.well-known/oauth-authorization-server/tenant\n\n",
    "GET /tenant/.well-known/openid-configuration\nIf-None-Match: *\n\n",
    "GET /metrics\n\n", "GET /healthz\n\n", "DELETE /.well-known/jwks.json\n\n", "GET /nope\n\n",
    "GET /healthz\nContent-Length: 20000\n\n",
]:
    put("serve_http", r)

# ----------------------------------------------------------- gate config
gate_md = doc("gateway.md")
for b in ini_blocks(gate_md):
    if "[route " not in b:
        b = "[route doc]\nalgs = RS256\njwks_url = https://id.example.com/.well-known/jwks.json\n" + b
    put("gate_config", b)
for c in [
    "[route k]\nkey_file = es256.pub.jwk\nalgs = ES256\n",
    "[gate]\nlog_level = warn\nthreads = 2\ntoken_cache = 0\nmax_token = 256\nheader_max = 16\n"
    "connection_limit = 16\nidle_timeout = 1h\njwks_timeout = 500ms\njwks_max_bytes = 1024\njwks_min_ttl = 1\n"
    "jwks_max_ttl = 7d\njwks_default_ttl = 5m\njwks_refresh_ahead = 0\njwks_cooldown = 30s\n"
    "jwks_stale_max = 30d\njwks_ca_file = /etc/ssl/ca.pem\nlisten = 127.0.0.1:8081\n\n"
    "[route all]\nmatch_host = *.Example.COM\nmatch_path_prefix = /a/\nkey_file = keys.jwks\n"
    "key_file = ed25519.pub.pem\nalgs = RS256, ES256, EdDSA, PS256\naudience = \"  quoted  \"\ntyp = at+jwt\n"
    "require = sub\nrequire = scope\nleeway = 0\nmax_age = 1\nheader X-A = a\nheader x_b = \"b\"\n"
    "token_cookie = tok\ntoken_header = X-Token\nallow_http_jwks = yes\n"
    "jwks_url = http://127.0.0.1:9/jwks\nlegacy_hs256_secret_file = legacy.key\n"
    "legacy_deadline = 2026-12-31T23:59:60.5+14:00\n",
    "[route l]\nkey_file = ed25519.pub.pem\nalgs = EdDSA\nlegacy_hs256_secret_file = legacy.key\n"
    "legacy_deadline = 0000-01-01T00:00:00Z\n",
    "[route a]\nalgs = none\n", "[route a]\nalgs = HS256\nkey_file = x\n", "[route]\n", "[gate]\n[gate]\n",
    "[route a]\nalgs = ES256\njwks_url = http://x/\n", "[route a]\nalgs = ES256\nkey_file = a\nheader Host = sub\n",
    "[route a]\nalgs = ES256\nkey_file = a\nheader X = a\nheader x = b\n", "key = outside\n",
]:
    put("gate_config", c)

# ---------------------------------------------------------- gate request
NOW = 1700000000
def claims(**kw):
    return json.dumps(kw, separators=(",", ":"), ensure_ascii=False)
def req(headers, sel=None, body=None):
    t = "".join("%s: %s\n" % hv for hv in headers)
    if sel is None:
        return t
    return t.encode() + b"\n" + bytes([sel]) + body.encode()
ADMIN = claims(iss="https://id.example.com", aud="https://admin.example.com", sub="alice", client_id="c1",
               iat=NOW - 60, exp=NOW + 600)
API = claims(iss="https://id.example.com", aud=["https://api.example.com", "x"], sub="bob", scope="read write",
             roles=["admin", "ops"], exp=NOW + 600)
LEG = claims(iss="https://old.example.com", sub="carol", exp=NOW + 600)
AUTH = ("Authorization", "Bearer %T")
for r in [
    req([("X-Original-URI", "/admin/users?id=1"), ("Host", "api.example.com"), AUTH], 0, ADMIN),
    req([("X-Original-URI", "/v1/x"), ("X-Original-Host", "a.api.example.com"), ("Cookie", "a=b; access_token=%T")],
        1, API),
    req([("X-Original-URI", "/v1/x"), ("Host", "API.example.com:443"), ("X-Token", "%T")], 2, API),
    req([("X-Original-URI", "/v1/x"), ("Host", "api.example.com."), AUTH, ("X-Token", "Bearer %T")], 3, API),
    req([("X-Original-URI", "/legacy/x"), AUTH], 4, LEG),
    req([("X-Original-URI", "/legacy/../legacy/./y"), AUTH], 2, LEG),
    req([("X-Original-URI", "/old/x"), AUTH], 4, LEG),
    req([("X-Original-URI", "/old/x"), AUTH], 0, LEG),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH], 5, API),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH], 6, API),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH], 1 + 7 * 1 + 28 * 2, API),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH], 3 + 28, API),
    req([("X-Original-URI", "/admin/x"), ("Host", "api.example.com"), AUTH], 7, ADMIN),
    req([("Host", "remote.example.com"), AUTH], 0, ADMIN),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH], 1,
        claims(iss="https://id.example.com", aud="other", sub="a\u00e9\U0001F600\"\\/", scope="x,y",
               roles=["a,b", "c\nd"], exp=NOW + 1.5)),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH], 2,
        claims(iss="https://id.example.com", aud="https://api.example.com", sub="s" * 200, scope={"a": [1, None]},
               roles=[], exp=NOW + 60, nbf=NOW - 1)),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), AUTH, ("Authorization", "Bearer other")], 1, API),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), ("Authorization", "Bearer")]),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), ("Authorization", "Basic dXNlcjpwdw==")]),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), ("Cookie", "access_token=a; access_token=b")]),
    req([("X-Original-URI", "/%zz"), ("Host", "api.example.com")]),
    req([("X-Original-URI", "http://api.example.com/admin/%2e%2e/admin/x#f"), ("Host", "api.example.com"), AUTH],
        0, ADMIN),
    req([("X-Original-URI", "/admin/x"), ("Host", "other.example.com"), AUTH], 0, ADMIN),
    req([("X-Original-URI", "/v1"), ("Host", "api.example.com"), ("Authorization", "Bearer a.b.c!")]),
]:
    put("gate_request", r)

# ---------------------------------------------------------------- ui api
# the hand-written requests of tests/regress/cases/ui_api (one per pane,
# with the harness's placeholders %S %H %T %J)
cases = os.path.join(root, "tests", "regress", "cases", "ui_api")
for name in sorted(os.listdir(cases)) if os.path.isdir(cases) else []:
    with open(os.path.join(cases, name), "rb") as f:
        put("ui_api", f.read())

for h in sorted(counts):
    print("make-corpus: %-13s +%d seeds" % (h, counts[h]))
PYEOF

if [ ! -d "$vec/rfc" ] || [ ! -d "$vec/wycheproof" ]; then
  echo "make-corpus: no vectors in $vec (set JWTKIT_VECTORS or pass the directory)" >&2
  exit 2
fi

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
