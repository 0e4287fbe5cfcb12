// jwtkit ui: the page.  Tabs over six panes; each pane is a module that
// talks to the local server only (api.js).  No request leaves this origin.

import { api, takeSecret } from "./api.js";
import { $, $$, banner, errorBox } from "./dom.js";
import * as decode from "./decode.js";
import * as verify from "./verify.js";
import * as generate from "./generate.js";
import * as pem from "./pem.js";
import * as plan from "./plan.js";
import * as jwks from "./jwks.js";

function show(name) {
  for (const b of $$("nav button")) b.setAttribute("aria-selected", String(b.dataset.pane === name));
  for (const p of $$("main > section")) p.hidden = p.id !== `pane-${name}`;
}

async function start() {
  for (const b of $$("nav button")) b.addEventListener("click", () => show(b.dataset.pane));
  if (!takeSecret()) {
    $("#status").append(banner("bad", "No secret:", "open the URL that `jwtkit ui` printed; it carries the " +
      "secret this page needs (a reload loses it: the page keeps it in memory only)."));
  }
  let info = { keyring: null };
  try {
    info = await api("info");
    $("#version").textContent = `libjwtkit ${info.version}`;
  } catch (e) {
    $("#status").append(errorBox(e));
  }
  decode.init($("#pane-decode"));
  verify.init($("#pane-verify"));
  generate.init($("#pane-generate"), (v) => {
    verify.prefill($("#pane-verify"), v);
    show("verify");
    $("#verify-run").click();
  });
  pem.init($("#pane-pem"));
  plan.init($("#pane-plan"), info);
  jwks.init($("#pane-jwks"));
  show("decode");
  document.body.dataset.ready = "1";
}

start();
