// A key as the library describes it: kid, algorithm, type, size or curve,
// RFC 7638 thumbprint, public or private.

import { h, table } from "./dom.js";

export function keyCard(title, k) {
  const rows = [["kid", k.kid || "(none)"], ["alg", k.alg], ["kty", k.kty],
    [k.curve ? "curve" : "size", k.curve || `${k.bits} bits`]];
  if (k.thumbprint) rows.push(["thumbprint", h("code", {}, k.thumbprint)]);
  rows.push(["part", k.private ? "private (can sign)" : "public"]);
  return h("div", { class: "card key" }, h("h4", {}, title), table(rows));
}
