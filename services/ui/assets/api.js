// The page's one way to the server: POST /api/NAME with a JSON body and the
// per-start secret in a header.  The secret comes from the URL jwtkit ui
// printed (?token=...), is kept in memory only, and the address bar is
// cleaned so it does not stay on screen.

const HEADER = "X-Jwtkit-Ui-Secret";
let secret = null;

export function takeSecret() {
  const params = new URLSearchParams(window.location.search);
  const t = params.get("token");
  if (t) {
    secret = t;
    window.history.replaceState(null, "", window.location.pathname);
  }
  return secret !== null;
}

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export async function api(name, body) {
  const r = await fetch(`/api/${name}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", [HEADER]: secret || "" },
    body: JSON.stringify(body || {}),
    cache: "no-store",
    credentials: "omit",
    redirect: "error",
  });
  const text = await r.text();
  let data = null;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ApiError(r.status, text.trim() || `HTTP ${r.status}`, null);
  }
  if (!r.ok || !data.ok) throw new ApiError(r.status, data.error || `HTTP ${r.status}`, data.field || null);
  return data;
}
