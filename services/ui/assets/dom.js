// Small DOM helpers: every text goes in through textContent, never as HTML.

export const SVG_NS = "http://www.w3.org/2000/svg";

// h("div", {class: "x", onclick: fn}, child, "text", ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// The same for SVG elements.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// A banner: kind is "ok", "bad", "warn" or "info".
export function banner(kind, title, text) {
  return h("div", { class: `banner ${kind}`, role: "status" }, h("strong", {}, title), text ? " " + text : "");
}

// "a, b c" -> ["a", "b", "c"]
export function words(text) {
  return text.split(/[\s,]+/).filter((w) => w.length > 0);
}

// 3600 -> "1h", 90 -> "90s"
export function duration(sec) {
  if (sec === null || sec === undefined) return "";
  const units = [["w", 604800], ["d", 86400], ["h", 3600], ["m", 60]];
  for (const [u, n] of units) if (sec >= n && sec % n === 0) return `${sec / n}${u}`;
  return `${sec}s`;
}

// Unix seconds -> "2026-12-03 09:00:00Z"
export function utc(t) {
  return new Date(t * 1000).toISOString().replace("T", " ").replace(".000Z", "Z");
}

// A labelled key/value table.
export function table(rows, cls) {
  return h("table", { class: cls || "kv" },
    h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
}

// An API failure as a red box: the server's sentence, and the field at fault.
export function errorBox(e) {
  return banner("bad", e.status ? `Refused (${e.status}):` : "Failed:",
    (e.field ? `${e.field}: ` : "") + (e.message || String(e)));
}
