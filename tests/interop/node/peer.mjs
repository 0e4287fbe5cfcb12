// node jose peer of the jwtkit interop suite.
//
//   node peer.mjs REQUESTS.json   -> prints a JSON array of results
//
// Each request: {op, alg, dir, claims?, token?, algorithms?, kid?, key?}
//   op "sign":        sign claims with DIR's private key (or secret.bin) and kid
//   op "verify":      verify token with DIR's public key (or secret) allowing
//                     `algorithms` (default [alg]); key "pem-as-secret" uses the
//                     bytes of pub.pem as an HMAC secret
//   op "verify_jwks": verify token against DIR/jwks.json, key chosen by kid
// Results: {ok: true, token?|claims?} or {ok: false, error}.
// alg "Ed448" means EdDSA with an Ed448 key.
import { readFileSync } from 'node:fs';
import { createSecretKey } from 'node:crypto';
import { join } from 'node:path';
import * as jose from 'jose';

const joseAlg = (alg) => (alg === 'Ed448' ? 'EdDSA' : alg);
const isHS = (alg) => alg.startsWith('HS');

function kidOf(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'jwk.json'), 'utf8')).kid;
  } catch {
    return undefined;
  }
}

async function privateKey(alg, dir) {
  if (isHS(alg)) return createSecretKey(readFileSync(join(dir, 'secret.bin')));
  return jose.importPKCS8(readFileSync(join(dir, 'priv.pem'), 'utf8'), joseAlg(alg));
}

async function publicKey(alg, dir, kind) {
  if (kind === 'pem-as-secret') return createSecretKey(readFileSync(join(dir, 'pub.pem')));
  if (isHS(alg)) return createSecretKey(readFileSync(join(dir, 'secret.bin')));
  return jose.importSPKI(readFileSync(join(dir, 'pub.pem'), 'utf8'), joseAlg(alg));
}

async function handle(r) {
  const alg = joseAlg(r.alg);
  const algorithms = r.algorithms ? r.algorithms.map(joseAlg) : [alg];
  switch (r.op) {
    case 'sign': {
      const kid = r.kid === undefined ? kidOf(r.dir) : r.kid;
      const header = { alg, typ: 'JWT' };
      if (kid) header.kid = kid;
      const token = await new jose.SignJWT(r.claims).setProtectedHeader(header).sign(await privateKey(r.alg, r.dir));
      return { ok: true, token };
    }
    case 'verify': {
      const key = await publicKey(r.alg, r.dir, r.key);
      const { payload } = await jose.jwtVerify(r.token, key, { algorithms });
      return { ok: true, claims: payload };
    }
    case 'verify_jwks': {
      const set = jose.createLocalJWKSet(JSON.parse(readFileSync(join(r.dir, 'jwks.json'), 'utf8')));
      const { payload } = await jose.jwtVerify(r.token, set, { algorithms });
      return { ok: true, claims: payload };
    }
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

const requests = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const r of requests) {
  try {
    results.push(await handle(r));
  } catch (e) {
    results.push({ ok: false, error: `${e.code || e.name}: ${e.message}` });
  }
}
process.stdout.write(JSON.stringify(results));
