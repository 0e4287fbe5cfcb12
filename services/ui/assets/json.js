// Coloured, indented JSON from JSON text the server has already checked
// with the library's strict parser.  The text is re-indented token by token
// (numbers stay exactly as written: 1.7000036e+09 is not turned into a
// float), and each token becomes a span with a class for its colour.

import { h } from "./dom.js";

const TOKEN = /\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|[{}\[\],:])/y;

function lex(text) {
  const out = [];
  TOKEN.lastIndex = 0;
  let m;
  while (TOKEN.lastIndex < text.length && (m = TOKEN.exec(text)) !== null) out.push(m[1]);
  return out;
}

function kind(tok, next) {
  if (tok[0] === '"') return next === ":" ? "j-key" : "j-str";
  if (tok === "true" || tok === "false" || tok === "null") return "j-lit";
  if (/[{}\[\],:]/.test(tok)) return "j-punct";
  return "j-num";
}

// <pre class="json"> of the text, indented by two spaces.
export function jsonView(text, cls) {
  const pre = h("pre", { class: `json ${cls || ""}` });
  const toks = lex(text);
  let depth = 0;
  const nl = () => pre.append("\n" + "  ".repeat(depth));
  toks.forEach((t, i) => {
    const next = toks[i + 1];
    if (t === "}" || t === "]") {
      depth--;
      if (toks[i - 1] !== "{" && toks[i - 1] !== "[") nl();
    }
    pre.append(h("span", { class: kind(t, next) }, t));
    if (t === ":") pre.append(" ");
    if (t === "{" || t === "[") {
      depth++;
      if (next !== "}" && next !== "]") nl();
    }
    if (t === ",") nl();
  });
  return pre;
}

// A compact token, its three parts coloured like the views of its parts.
export function tokenView(token) {
  const parts = token.split(".");
  const pre = h("pre", { class: "token" });
  const cls = ["t-header", "t-payload", "t-sig"];
  parts.forEach((p, i) => {
    if (i > 0) pre.append(h("span", { class: "t-dot" }, "."));
    pre.append(h("span", { class: cls[Math.min(i, 2)] }, p));
  });
  return pre;
}
