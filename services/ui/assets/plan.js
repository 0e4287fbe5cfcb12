// The rotation plan pane: each key's pending -> active -> retiring ->
// retired spans as the library computes them (from the keyring jwtkit ui
// was started with, or from parameters run through the keyring's own
// rules), "publish ahead" and "keep until tokens expire" marked, now
// marked, and the guarantee: every token valid at time t verifies against
// the JWKS published max-age before t.

import { api } from "./api.js";
import { $, banner, clear, duration, errorBox, h, s, utc } from "./dom.js";
import { axis, bracket, marker, scale, span } from "./svg.js";

const W = 900, LEFT = 170, RIGHT = 20, ROWS = 56, DROW = 72, TOP = 44;

function extent(keys, now) {
  let lo = now, hi = now;
  for (const k of keys) {
    lo = Math.min(lo, k.published);
    hi = Math.max(hi, k.retired || k.retiring || k.activated || k.published);
  }
  return [lo, hi];
}

// One key: its three states on one bar, the span its tokens are accepted
// and the span every verifier holds it below.
function row(f, k, y) {
  const g = s("g", { class: "key-span", "data-kid": k.kid, "data-state": k.state });
  const label = `${k.kid.slice(0, 12)}…`;
  g.append(s("text", { x: 8, y: y + 13, class: "kid" }, label),
    s("text", { x: 8, y: y + 27, class: "state" }, `${k.alg} ${k.state}${k.first ? " (first)" : ""}`));
  const seg = (a, b, cls, planned) => span(f, a, b, y, 18, { class: `seg ${cls}${planned ? " planned" : ""}` });
  if (k.activated && k.published < k.activated) g.append(seg(k.published, k.activated, "pending", k.planned.activated) || "");
  if (k.activated && k.retiring) g.append(seg(k.activated, k.retiring, "active", k.planned.retiring) || "");
  if (k.retiring && k.retired) g.append(seg(k.retiring, k.retired, "retiring", k.planned.retired) || "");
  if (k.tokens_until) {
    g.append(span(f, k.activated, k.tokens_until, y + 22, 5, { class: "tokens" }) || "");
    g.append(span(f, k.held_from, k.retired, y + 29, 5, { class: `held ${k.holds ? "" : "broken"}` }) || "");
  }
  return g;
}

function legend(y) {
  const items = [["pending", "published, not signing"], ["active", "signs"], ["retiring", "verify only"],
    ["tokens", "its tokens are accepted"], ["held", "every verifier's JWKS has it"]];
  const g = s("g", { class: "legend" });
  let x = LEFT;
  for (const [cls, text] of items) {
    g.append(s("rect", { x: x, y: y - 9, width: 14, height: 10, class: `seg ${cls}` }),
      s("text", { x: x + 18, y: y }, text));
    x += 30 + text.length * 6.2;
  }
  return g;
}

function picture(keys, now, t0, t1, title, id, extra, rowh) {
  const ROW = rowh || ROWS;
  const f = scale(t0, t1, LEFT, W - RIGHT);
  const height = TOP + keys.length * ROW + 30;
  const svg = s("svg", { id: id, class: "plan", viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": title });
  svg.append(s("text", { x: 8, y: 16, class: "title" }, title));
  keys.forEach((k, i) => svg.append(row(f, k, TOP + i * ROW)));
  svg.append(axis(f, TOP + keys.length * ROW, 6));
  svg.append(marker(f, now, TOP - 12, TOP + keys.length * ROW, "now", { class: "marker now" }) || "");
  if (extra) extra(svg, f);
  return svg;
}

// The handover between key a and its successor b: publish-ahead and the
// keep-until-tokens-expire window, each drawn at a scale where they show.
function details(keys, t, now) {
  const out = [];
  const i = keys.findIndex((k, j) => j + 1 < keys.length && keys[j + 1].activated && k.retiring && k.retired);
  if (i < 0) return out;
  const a = keys[i], b = keys[i + 1];
  const pair = [a, b];
  const rowY = (j) => TOP + j * DROW;
  let pad = Math.max((b.activated - b.published) * 0.3, 60);
  out.push(picture(pair, now, b.published - pad, b.activated + pad,
    `Publish ahead: ${b.kid.slice(0, 12)}… is published ${duration(b.activated - b.published)} before it signs`,
    "plan-ahead", (svg, f) => {
      svg.append(bracket(f, b.published, b.activated, rowY(1) - 2, `publish ahead ${duration(b.activated - b.published)}`, "ahead") || "");
      svg.append(bracket(f, b.published, b.held_from, rowY(1) + 42, `max-age ${duration(t.max_age)}: then every verifier has it`, "maxage") || "");
    }, DROW));
  pad = Math.max((a.retired - a.retiring) * 0.3, 60);
  out.push(picture(pair, now, a.retiring - pad, a.retired + pad,
    `Keep until tokens expire: ${a.kid.slice(0, 12)}… stays published ${duration(a.retired - a.retiring)} after it stops signing`,
    "plan-keep", (svg, f) => {
      svg.append(bracket(f, a.retiring, a.retired, rowY(0) - 2, `keep ${duration(a.retired - a.retiring)}`, "keep") || "");
      svg.append(bracket(f, a.retiring, a.retiring + t.token_ttl, rowY(0) + 42, `token TTL ${duration(t.token_ttl)}`, "ttl") || "");
      svg.append(bracket(f, a.retiring + t.token_ttl, a.tokens_until, rowY(0) + 42, `leeway ${duration(t.leeway)}`, "lw", true) || "");
      svg.append(bracket(f, a.tokens_until, a.retired, rowY(0) + 42, `max-age ${duration(t.max_age)}`, "maxage") || "");
    }, DROW));
  return out;
}

function guarantee(d) {
  const keys = d.keys.filter((k) => k.holds !== undefined);
  const box = h("div", { class: "guarantee" });
  box.append(d.holds
    ? banner("ok", "The guarantee holds:", "every token valid at a time t verifies against the JWKS published " +
      "max-age before t, for every key below.")
    : banner("bad", "The guarantee is broken:", "a token may meet a verifier whose cached JWKS lacks its key."));
  box.firstChild.id = "plan-verdict";
  box.append(h("ul", { class: "checks" }, keys.map((k) => h("li", { class: `check ${k.holds ? "pass" : "fail"}` },
    h("span", { class: "icon" }, k.holds ? "✓" : "✗"), h("span", { class: "label" }, `${k.kid.slice(0, 12)}…`),
    h("span", { class: "detail" }, k.first
      ? `first key: no older JWKS exists; its tokens are accepted until ${utc(k.tokens_until)}, it is published until ${utc(k.retired)}`
      : `held by every verifier from ${utc(k.held_from)}, signs from ${utc(k.activated)}; tokens accepted until ${utc(k.tokens_until)}, published until ${utc(k.retired)}`)))));
  return box;
}

export function init(pane, info) {
  const out = $("#plan-out", pane);
  const fromRing = $("#plan-src-keyring", pane);
  if (!info.keyring) {
    fromRing.disabled = true;
    $("#plan-keyring-note", pane).textContent = "(start jwtkit ui with --keyring DIR|URL to draw a real keyring)";
  } else {
    $("#plan-keyring-note", pane).textContent = info.keyring;
  }
  $("#plan-run", pane).addEventListener("click", async () => {
    clear(out);
    const val = (id) => $(id, pane).value.trim();
    const body = fromRing.checked ? { source: "keyring" } : {
      source: "params", max_age: val("#plan-maxage"), token_ttl: val("#plan-ttl"), leeway: val("#plan-leeway"),
      rotate_every: val("#plan-period"), publish_ahead: val("#plan-ahead"), keys: Number(val("#plan-keys")) || 4,
    };
    try {
      const d = await api("plan", body);
      const t = d.timing;
      out.append(h("p", { class: "note" }, `${d.source === "keyring" ? `Keyring ${d.keyring}, generation ${d.generation}` :
        "A keyring created now with these parameters"}: JWKS max-age ${duration(t.max_age)}, token TTL ` +
        `${duration(t.token_ttl)}, leeway ${duration(t.leeway)}, rotation every ${duration(t.rotate_every)}` +
        (t.publish_ahead ? `, next key published ${duration(t.publish_ahead)} ahead` : "") +
        ". Dashed: the library's plan, not yet happened."));
      const [lo, hi] = extent(d.keys, d.now);
      const pad = (hi - lo) * 0.03 + 60;
      const main = picture(d.keys, d.now, lo - pad, hi + pad, "Every key's lifecycle", "plan-svg");
      main.append(legend(TOP + d.keys.length * ROWS + 36));
      main.setAttribute("viewBox", `0 0 ${W} ${TOP + d.keys.length * ROWS + 46}`);
      out.append(main, ...details(d.keys, t, d.now), guarantee(d));
    } catch (e) {
      out.append(errorBox(e));
    }
  });
}
