// The PEM check pane: the report of `jwtkit pem check --json` for pasted
// text or a dropped file (read by the browser, sent to the local server).

import { api } from "./api.js";
import { $, banner, clear, errorBox, h } from "./dom.js";

function report(r, desc) {
  const box = h("div", { class: "pem-report" });
  box.append(r.ok ? banner("ok", "Clean:", "no problem found.")
    : banner("bad", `${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}:`, "see below."));
  box.firstChild.id = "pem-verdict";
  box.append(h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ["line", "label", "type", "family", "size / curve"].map((t) => h("th", {}, t)))),
    h("tbody", {}, r.blocks.map((b) => h("tr", { class: "block" }, h("td", {}, b.line), h("td", {}, b.label),
      h("td", {}, b.type), h("td", {}, b.family || "?"), h("td", {}, b.curve || (b.bits ? `${b.bits} bits` : "?")))))));
  if (r.problems.length)
    box.append(h("ul", { class: "problems" }, r.problems.map((p) => h("li", { class: "problem", "data-code": p.code },
      h("code", {}, p.code), p.line ? ` line ${p.line}: ` : ": ", p.message,
      desc[p.code] ? h("span", { class: "about" }, ` (${desc[p.code]})`) : ""))));
  return box;
}

export function init(pane) {
  const text = $("#pem-text", pane), out = $("#pem-out", pane);
  let name = null;
  text.addEventListener("dragover", (e) => {
    e.preventDefault();
    text.classList.add("drop");
  });
  text.addEventListener("dragleave", () => text.classList.remove("drop"));
  text.addEventListener("drop", async (e) => {
    e.preventDefault();
    text.classList.remove("drop");
    const f = e.dataTransfer.files[0];
    if (!f) return;
    if (f.size > 1 << 20) {
      clear(out).append(banner("bad", "Too large:", `${f.name} is over 1 MiB.`));
      return;
    }
    text.value = await f.text();
    name = f.name;
  });
  text.addEventListener("input", () => (name = null));
  $("#pem-run", pane).addEventListener("click", async () => {
    clear(out);
    try {
      const body = { pem: text.value, passphrase: $("#pem-pass", pane).value };
      if (name) body.name = name;
      const d = await api("pem", body);
      out.append(report(d.report, d.descriptions));
    } catch (e) {
      out.append(errorBox(e));
    }
  });
}
