// The decode pane: the token's header and payload as the library decodes
// them, every member explained, and iat/nbf/exp on a time axis against
// now with the verifier's leeway.  UNVERIFIED, and said so.

import { api } from "./api.js";
import { $, banner, clear, errorBox, h, s, utc } from "./dom.js";
import { jsonView, tokenView } from "./json.js";
import { axis, marker, scale, span } from "./svg.js";

const W = 760, H = 150, X0 = 20, X1 = W - 20, AXIS_Y = 110;

// The lifetime picture: the accepted window, the leeway on each side, the
// three times and now.
export function lifetime(times, now, leeway) {
  const t = {};
  for (const x of times) if (x.floor !== undefined) t[x.name] = x;
  const points = [now, ...["iat", "nbf", "exp"].filter((n) => t[n]).map((n) => t[n].ceil)];
  let lo = Math.min(...points), hi = Math.max(...points);
  const pad = Math.max((hi - lo) * 0.12, leeway * 1.5, 60);
  const f = scale(lo - pad, hi + pad, X0, X1);
  const svg = s("svg", { id: "lifetime", class: "lifetime", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "the token's lifetime against now" });
  const from = t.nbf ? t.nbf.ceil : t.iat ? t.iat.ceil : f.t0;
  const until = t.exp ? t.exp.ceil : f.t1;
  svg.append(span(f, from, until, 64, 30, { class: "valid" }) || "");
  if (t.exp) svg.append(span(f, t.exp.ceil, t.exp.ceil + leeway, 64, 30, { class: "leeway" }) || "");
  if (t.nbf) svg.append(span(f, t.nbf.ceil - leeway, t.nbf.ceil, 64, 30, { class: "leeway" }) || "");
  svg.append(s("text", { x: (f(Math.max(from, f.t0)) + f(Math.min(until, f.t1))) / 2, y: 84,
    "text-anchor": "middle", class: "valid-label" }, t.exp ? "valid" : "valid (no exp: never expires)"));
  svg.append(axis(f, AXIS_Y, 5));
  for (const n of ["iat", "nbf", "exp"]) {
    if (!t[n]) continue;
    svg.append(marker(f, t[n].ceil, 40 + (n === "nbf" ? 10 : 0), AXIS_Y, `${n} ${t[n].relative}`,
      { class: `marker m-${n}`, "data-name": n }) || "");
  }
  svg.append(marker(f, now, 20, AXIS_Y, "now", { class: "marker now", "data-name": "now" }) || "");
  return svg;
}

function membersTable(title, rows) {
  return h("table", { class: "members" },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, h("th", {}, "name"), h("th", {}, "value"), h("th", {}, "meaning"))),
    h("tbody", {}, rows.map((m) => h("tr", { "data-name": m.name },
      h("td", { class: "name" }, m.name),
      h("td", { class: "value" }, jsonView(JSON.stringify(m.value), "inline")),
      h("td", { class: "about" }, m.about || "")))));
}

// What decode and verify both show of a token.
export function description(d) {
  const box = h("div", { class: "description" });
  box.append(h("div", { class: "cols" },
    h("div", {}, h("h3", {}, "Header"), jsonView(d.header_text, "header")),
    h("div", {}, h("h3", {}, "Payload"), jsonView(d.payload_text, "payload"))));
  box.append(membersTable("Header members", d.header));
  box.append(membersTable("Claims", d.claims));
  const bad = d.times.filter((t) => t.error);
  for (const t of bad) box.append(banner("bad", `${t.name}:`, t.error));
  return box;
}

export function init(pane) {
  const token = $("#decode-token", pane), leeway = $("#decode-leeway", pane), out = $("#decode-out", pane);
  let seq = 0; // only the latest answer is shown
  async function run() {
    clearTimeout(token.timer);
    const mine = ++seq;
    if (token.value.trim() === "") return clear(out);
    try {
      const d = await api("decode", { token: token.value, leeway: Number(leeway.value) || 0 });
      if (mine !== seq) return;
      clear(out);
      out.append(banner("warn", "UNVERIFIED:", "the signature was not checked. Nothing here may decide anything; " +
        "the Verify pane asks the verifier."));
      out.append(tokenView(token.value.trim().replace(/^Bearer\s+/, "")));
      const times = d.times.filter((t) => t.floor !== undefined);
      out.append(h("h3", {}, "Lifetime"));
      out.append(lifetime(d.times, d.now, d.leeway));
      out.append(h("p", { class: "note" }, `now ${utc(d.now)}, leeway ${d.leeway} s. `,
        times.map((t) => `${t.name} ${t.utc} (${t.relative})`).join(" · ")));
      out.append(description(d));
    } catch (e) {
      if (mine === seq) clear(out).append(errorBox(e));
    }
  }
  $("#decode-run", pane).addEventListener("click", run);
  token.addEventListener("input", () => {
    clearTimeout(token.timer);
    token.timer = setTimeout(run, 300);
  });
}
