// The generate pane: an algorithm, a generated (or pasted) key, claims from
// a template or by hand; the token, the public JWK Set, and -- once, with a
// warning -- the private key or secret.  Nothing is stored anywhere.

import { api } from "./api.js";
import { $, banner, clear, errorBox, h, words } from "./dom.js";
import { jsonView, tokenView } from "./json.js";
import { keyCard } from "./keycard.js";
import { ALGS } from "./verify.js";

// Claim templates: the fields they fill.
const TEMPLATES = {
  access: { label: "OAuth access token (RFC 9068)", typ: "at+jwt", iss: "https://issuer.example",
    sub: "client-42", aud: "https://api.example", scope: "read write", ttl: "15m",
    claims: '{"client_id": "client-42"}' },
  id: { label: "OpenID Connect ID token", typ: "JWT", iss: "https://login.example", sub: "alice",
    aud: "my-app", scope: "", ttl: "5m", claims: '{"nonce": "n-0S6_WzA2Mj", "email": "alice@example.com"}' },
  service: { label: "Service to service", typ: "JWT", iss: "billing", sub: "billing", aud: "ledger",
    scope: "ledger:write", ttl: "2m", claims: "" },
};

export function init(pane, onVerify) {
  const alg = $("#gen-alg", pane);
  for (const a of ALGS) alg.append(h("option", { value: a }, a));
  alg.value = "ES256";
  const tpl = $("#gen-templates", pane);
  for (const [k, t] of Object.entries(TEMPLATES))
    tpl.append(h("button", { type: "button", class: "small", "data-template": k, onclick: () => fill(t) }, t.label));
  function fill(t) {
    for (const f of ["typ", "iss", "sub", "aud", "scope", "ttl", "claims"]) $(`#gen-${f}`, pane).value = t[f];
  }
  fill(TEMPLATES.access);
  const out = $("#gen-out", pane);
  let last = null;
  $("#gen-run", pane).addEventListener("click", async () => {
    clear(out);
    const val = (id) => $(id, pane).value;
    const body = {
      alg: alg.value, key: val("#gen-key"), kid: val("#gen-kid"), typ: val("#gen-typ"), iss: val("#gen-iss"), sub: val("#gen-sub"),
      aud: words(val("#gen-aud")), scope: val("#gen-scope"), ttl: val("#gen-ttl") || "15m",
      claims: val("#gen-claims"), jti: $("#gen-jti", pane).checked,
    };
    const bits = val("#gen-bits");
    if (bits) body.bits = Number(bits);
    try {
      const d = await api("generate", body);
      last = { token: d.token, algs: [body.alg], iss: body.iss, aud: body.aud,
        keys: d.jwks ? JSON.stringify(d.jwks) : d.private };
      for (const w of d.warnings) out.append(banner("warn", "Note:", w));
      out.append(h("h3", {}, "Token"), tokenView(d.token));
      out.append(h("button", { type: "button", id: "gen-verify", onclick: () => onVerify(last) },
        "Verify this token →"));
      out.append(h("h3", {}, "Claims signed"), jsonView(d.claims_text, "payload"));
      out.append(keyCard(d.generated ? "Generated key" : "Pasted key", d.key));
      if (d.jwks) out.append(h("h3", {}, "Public JWK Set (safe to publish)"), jsonView(JSON.stringify(d.jwks)));
      if (d.private) {
        const secret = h("pre", { class: "secret", id: "gen-private", hidden: true }, d.private);
        out.append(h("h3", {}, d.key.kty === "oct" ? "Secret (oct JWK)" : "Private key (PKCS#8)"),
          banner("bad", "Private:", "whoever holds this can mint tokens. It exists only in this page; it is not " +
            "stored, and leaves with a reload."),
          h("button", { type: "button", class: "small", onclick: (e) => {
            secret.hidden = !secret.hidden;
            e.target.textContent = secret.hidden ? "Show" : "Hide";
          } }, "Show"), secret);
      }
    } catch (e) {
      out.append(errorBox(e));
    }
  });
}
