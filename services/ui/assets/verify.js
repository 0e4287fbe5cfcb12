// The verify pane: pinned algorithms, keys (pasted PEM, JWK or JWK Set, a
// secret, or a JWKS URL the server fetches), iss/aud/sub/typ/leeway; the
// verdict is the library's, and so is every check shown.

import { api } from "./api.js";
import { $, $$, banner, clear, errorBox, h, words } from "./dom.js";
import { tokenView } from "./json.js";
import { description, lifetime } from "./decode.js";
import { keyCard } from "./keycard.js";

export const ALGS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
  "ES256", "ES384", "ES512", "EdDSA"];

const LABELS = {
  format: "Token format", header: "Header", algorithm: "Algorithm pinned", key: "Key found",
  signature: "Signature", exp: "Not expired (exp)", nbf: "Not before (nbf)", iat: "Not issued in the future (iat)",
  iss: "Issuer (iss)", aud: "Audience (aud)", sub: "Subject (sub)", typ: "Type (typ)",
};
const ICON = { pass: "✓", fail: "✗", skip: "–" };

function checks(list) {
  return h("ul", { class: "checks" }, list.map((c) => h("li", { class: `check ${c.status}`, "data-check": c.name },
    h("span", { class: "icon", "aria-hidden": "true" }, ICON[c.status] || "?"),
    h("span", { class: "label" }, LABELS[c.name] || c.name),
    h("span", { class: "detail" }, c.detail || ""))));
}

// Fill the form (the generate pane's "verify this token").
export function prefill(pane, v) {
  $("#verify-token", pane).value = v.token || "";
  $("#verify-keys", pane).value = v.keys || "";
  $("#verify-secret", pane).value = "";
  $("#verify-url", pane).value = "";
  $("#verify-iss", pane).value = v.iss || "";
  $("#verify-aud", pane).value = (v.aud || []).join(" ");
  for (const box of $$("input[name=alg]", pane)) box.checked = (v.algs || []).includes(box.value);
}

export function init(pane) {
  const algs = $("#verify-algs", pane);
  for (const a of ALGS)
    algs.append(h("label", { class: "alg" }, h("input", { type: "checkbox", name: "alg", value: a }), a));
  const out = $("#verify-out", pane);
  $("#verify-run", pane).addEventListener("click", async () => {
    clear(out);
    const val = (id) => $(id, pane).value;
    const body = {
      token: val("#verify-token"),
      algs: $$("input[name=alg]:checked", pane).map((b) => b.value),
      keys: val("#verify-keys"),
      secret: val("#verify-secret"),
      jwks_url: val("#verify-url").trim(),
      iss: words(val("#verify-iss")),
      aud: words(val("#verify-aud")),
      sub: val("#verify-sub").trim(),
      typ: val("#verify-typ").trim(),
      leeway: Number(val("#verify-leeway")) || 0,
      insecure_any_aud: $("#verify-anyaud", pane).checked,
    };
    try {
      const d = await api("verify", body);
      const verdict = d.valid
        ? banner("ok", "VALID:", `the library verified the token${d.kid ? ` (kid ${d.kid})` : ""}.`)
        : banner("bad", "INVALID:", d.error ? d.error.message : "refused");
      verdict.id = "verify-verdict";
      out.append(verdict);
      if (d.key) out.append(keyCard("Key that verified the signature", d.key));
      if (d.notes.length) out.append(h("ul", { class: "notes" }, d.notes.map((n) => h("li", {}, n))));
      out.append(h("h3", {}, "Checks"), checks(d.checks));
      if (d.header_text) {
        out.append(tokenView(body.token.trim().replace(/^Bearer\s+/, "")));
        out.append(h("h3", {}, "Lifetime"), lifetime(d.times, d.now, d.leeway));
        out.append(description(d));
      }
    } catch (e) {
      out.append(errorBox(e));
    }
  });
}
