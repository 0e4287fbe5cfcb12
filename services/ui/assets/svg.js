// SVG drawing helpers shared by the time axis of the decode pane and the
// rotation plan: a linear time scale, an axis with readable ticks, spans
// clipped to the window, brackets with a label.

import { s, utc } from "./dom.js";

// Time t (seconds) to x, over [t0, t1] -> [x0, x1].
export function scale(t0, t1, x0, x1) {
  const k = (x1 - x0) / Math.max(1, t1 - t0);
  const f = (t) => x0 + (t - t0) * k;
  f.t0 = t0;
  f.t1 = t1;
  f.x0 = x0;
  f.x1 = x1;
  return f;
}

const STEPS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
  7 * 86400, 14 * 86400, 30 * 86400, 90 * 86400, 365 * 86400];

function tickLabel(t, step) {
  const u = utc(t); // "YYYY-MM-DD hh:mm:ssZ"
  if (step >= 86400) return u.slice(0, 10);
  if (step >= 60) return u.slice(5, 16);
  return u.slice(11, 19);
}

// The axis line at y with ticks every "nice" step, at most about max ticks.
export function axis(f, y, max) {
  const span = f.t1 - f.t0;
  const step = STEPS.find((st) => span / st <= (max || 6)) || STEPS[STEPS.length - 1];
  const g = s("g", { class: "axis" }, s("line", { x1: f.x0, x2: f.x1, y1: y, y2: y }));
  for (let t = Math.ceil(f.t0 / step) * step; t <= f.t1; t += step) {
    const x = f(t);
    g.append(s("line", { x1: x, x2: x, y1: y, y2: y + 5 }));
    g.append(s("text", { x: x, y: y + 17, "text-anchor": "middle" }, tickLabel(t, step)));
  }
  return g;
}

// A rectangle for [a, b] clipped to the scale's window (at least 2 px wide
// when it is inside); null when it is outside.
export function span(f, a, b, y, height, attrs) {
  const lo = Math.max(Math.min(a, b), f.t0), hi = Math.min(Math.max(a, b), f.t1);
  if (hi < lo) return null;
  let x = f(lo), w = f(hi) - f(lo);
  if (w < 2) {
    x -= (2 - w) / 2;
    w = 2;
  }
  return s("rect", Object.assign({ x: x, y: y, width: w, height: height }, attrs));
}

// A vertical marker at t with a label above it.
export function marker(f, t, y1, y2, label, attrs) {
  if (t < f.t0 || t > f.t1) return null;
  const x = f(t);
  return s("g", attrs || {}, s("line", { x1: x, x2: x, y1: y1, y2: y2 }),
    label ? s("text", { x: x, y: y1 - 4, "text-anchor": "middle" }, label) : null);
}

// A bracket over [a, b] at y with a label in its middle, or beside it
// when the bracket is narrower than the label ("below": under it).
export function bracket(f, a, b, y, label, cls, below) {
  const xa = f(Math.max(a, f.t0)), xb = Math.max(f(Math.min(b, f.t1)), f(Math.max(a, f.t0)) + 1);
  if (b < f.t0 || a > f.t1) return null;
  const wide = xb - xa > label.length * 6.5;
  const right = xb + 6 + label.length * 6.5 < f.x1;
  const text = below ? { x: (xa + xb) / 2, y: y + 16, "text-anchor": "middle" }
    : wide ? { x: (xa + xb) / 2, y: y - 4, "text-anchor": "middle" }
    : right ? { x: xb + 6, y: y + 4, "text-anchor": "start" } : { x: xa - 6, y: y + 4, "text-anchor": "end" };
  return s("g", { class: `bracket ${cls || ""}` },
    s("path", { d: `M${xa},${y + 5} V${y} H${xb} V${y + 5}` }), s("text", text, label));
}
