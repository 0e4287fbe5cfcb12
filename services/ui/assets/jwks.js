// The JWK Set viewer: a card per key, the warnings a reviewer would give,
// and what the library's own JWK Set parser makes of the set.

import { api } from "./api.js";
import { $, banner, clear, errorBox, h, table } from "./dom.js";

function card(k) {
  const rows = [["kty", k.kty || "?"]];
  if (k.crv) rows.push(["crv", k.crv]);
  if (k.bits) rows.push(["size", `${k.bits} bits`]);
  rows.push(["alg", k.alg || "(none)"], ["use", k.use || "(none)"]);
  if (k.thumbprint) rows.push(["thumbprint", h("code", {}, k.thumbprint)]);
  const c = h("div", { class: `card jwk ${k.warnings.length ? "warned" : ""}`, "data-index": k.index },
    h("h4", {}, k.kid ? `kid ${k.kid}` : `key ${k.index} (no kid)`), table(rows));
  if (k.error) c.append(banner("bad", "jwtkit refuses it:", k.error.message));
  if (k.warnings.length) c.append(h("ul", { class: "warnings" }, k.warnings.map((w) => h("li", {}, w))));
  return c;
}

export function init(pane) {
  const out = $("#jwks-out", pane);
  $("#jwks-run", pane).addEventListener("click", async () => {
    clear(out);
    const url = $("#jwks-url", pane).value.trim();
    try {
      const d = await api("jwks", url ? { url: url } : { jwks: $("#jwks-text", pane).value });
      const lib = d.library;
      out.append(lib.error ? banner("bad", "The library refuses the set:", lib.error.message)
        : banner(lib.loaded === d.total ? "ok" : "warn", `jwtkit loads ${lib.loaded} of ${d.total} keys.`,
          lib.skipped.join("; ")));
      out.append(h("div", { class: "cards" }, d.keys.map(card)));
    } catch (e) {
      out.append(errorBox(e));
    }
  });
}
