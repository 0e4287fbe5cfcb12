"""Python peers of the jwtkit interop suite: PyJWT and jwcrypto.

Both answer the same requests as node/peer.mjs:
  {"op": "sign", "alg", "dir", "claims", "kid"?}          -> {"ok", "token"}
  {"op": "verify", "alg", "dir", "token", "algorithms"?}  -> {"ok", "claims"}
  {"op": "verify_jwks", "alg", "dir", "token", "algorithms"?}
Failures: {"ok": False, "error": "..."}.  alg "Ed448" is EdDSA with an
Ed448 key.  Each peer is used exactly as its documentation shows; nothing
is relaxed or tightened.
"""
import base64
import json
import os


def _read(d, name, mode="rb"):
    with open(os.path.join(d, name), mode) as f:
        return f.read()


def _kid(d):
    try:
        return json.loads(_read(d, "jwk.json", "r")).get("kid")
    except (OSError, ValueError):
        return None


def _alg(a):
    return "EdDSA" if a == "Ed448" else a


def _algs(r):
    return [_alg(a) for a in r.get("algorithms") or [r["alg"]]]


class Peer:
    name = "?"
    version = "?"

    def handle(self, r):
        try:
            return getattr(self, r["op"])(r)
        except Exception as e:  # every refusal of a peer is a result
            return {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}


class PyJWT(Peer):
    name = "PyJWT"

    def __init__(self):
        import jwt
        self.jwt = jwt
        self.version = jwt.__version__

    def _secret(self, r):
        return _read(r["dir"], "secret.bin")

    def sign(self, r):
        alg = _alg(r["alg"])
        key = self._secret(r) if alg.startswith("HS") else _read(r["dir"], "priv.pem")
        kid = r["kid"] if "kid" in r else _kid(r["dir"])
        headers = {"kid": kid} if kid else None
        tok = self.jwt.encode(r["claims"], key, algorithm=alg, headers=headers)
        return {"ok": True, "token": tok if isinstance(tok, str) else tok.decode()}

    def verify(self, r):
        alg = _alg(r["alg"])
        key = self._secret(r) if alg.startswith("HS") else _read(r["dir"], "pub.pem")
        claims = self.jwt.decode(r["token"], key, algorithms=_algs(r))
        return {"ok": True, "claims": claims}

    def verify_jwks(self, r):
        jwks = self.jwt.PyJWKSet.from_json(_read(r["dir"], "jwks.json", "r"))
        kid = self.jwt.get_unverified_header(r["token"]).get("kid")
        keys = [k for k in jwks.keys if k.key_id == kid]
        if not keys:
            raise LookupError("no key with kid %r in the JWK Set" % kid)
        claims = self.jwt.decode(r["token"], keys[0].key, algorithms=_algs(r))
        return {"ok": True, "claims": claims}


class Jwcrypto(Peer):
    name = "jwcrypto"

    def __init__(self):
        import jwcrypto
        from jwcrypto import jwk, jwt
        self.jwk, self.jwt = jwk, jwt
        try:
            from importlib.metadata import version
            self.version = version("jwcrypto")
        except Exception:
            self.version = getattr(jwcrypto, "__version__", "?")

    def _key(self, r, private):
        if r["alg"].startswith("HS"):
            k = base64.urlsafe_b64encode(_read(r["dir"], "secret.bin")).rstrip(b"=").decode()
            return self.jwk.JWK(kty="oct", k=k)
        return self.jwk.JWK.from_pem(_read(r["dir"], "priv.pem" if private else "pub.pem"))

    def sign(self, r):
        kid = r["kid"] if "kid" in r else _kid(r["dir"])
        header = {"alg": _alg(r["alg"]), "typ": "JWT"}
        if kid:
            header["kid"] = kid
        t = self.jwt.JWT(header=header, claims=r["claims"])
        t.make_signed_token(self._key(r, True))
        return {"ok": True, "token": t.serialize()}

    def verify(self, r):
        t = self.jwt.JWT(jwt=r["token"], key=self._key(r, False), algs=_algs(r))
        return {"ok": True, "claims": json.loads(t.claims)}

    def verify_jwks(self, r):
        ks = self.jwk.JWKSet.from_json(_read(r["dir"], "jwks.json", "r"))
        t = self.jwt.JWT(jwt=r["token"], key=ks, algs=_algs(r))
        return {"ok": True, "claims": json.loads(t.claims)}
