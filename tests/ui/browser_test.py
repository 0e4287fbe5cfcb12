#!/usr/bin/python3
"""jwtkit ui in a real browser: headless Chromium driven by Selenium.

Starts `jwtkit ui` on a free loopback port and Debian's chromium with a new
empty profile (and background networking off: the machine may have no
network), then works every pane as a user would:

  - decode a token: its claims and its time axis;
  - verify a good token (valid) and a tampered one (the signature check
    shown failed);
  - generate a token, then verify it in the verify pane;
  - a PEM check of a bad file dropped on the field;
  - the rotation plan: one SVG key span per key asked for;
  - the JWK Set viewer;
  - without the URL's secret the page says so and the API refuses it;
  - no request to any origin but the page's own (Chromium's network log
    and the page's resource timing), and no console error (a CSP
    violation is one);
  - a screenshot of each pane in $UI_OUT_DIR (docs/ui/*.png are these).

Exits 77 (skipped) when chromium, chromedriver or python3-selenium is
missing, unless CI=true: then it fails.  Environment: JWTKIT_CLI_BIN,
UI_OUT_DIR (set by ctest).
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def skip(why):
    if os.environ.get("CI") == "true":
        print("FAIL: %s (CI=true: the browser test must run)" % why)
        sys.exit(1)
    print("SKIP: %s" % why)
    sys.exit(77)


try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    skip("python3-selenium is not installed")
for p in (CHROMIUM, DRIVER):
    if not os.access(p, os.X_OK):
        skip("%s is not installed (apt-get install chromium chromium-driver)" % p)

JWTKIT = os.environ.get("JWTKIT_CLI_BIN")
if not JWTKIT:
    print("JWTKIT_CLI_BIN not set (run through ctest)")
    sys.exit(2)
OUT = os.environ.get("UI_OUT_DIR") or tempfile.mkdtemp(prefix="jwtkit-ui-shots.")
os.makedirs(OUT, exist_ok=True)

passed = failed = 0


def check(what, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   - %s" % what)
    else:
        failed += 1
        print("FAIL - %s %s" % (what, detail))


def run(*args, stdin=None):
    return subprocess.run([JWTKIT] + list(args), input=stdin, capture_output=True, text=True, check=True,
                          timeout=60).stdout


work = tempfile.mkdtemp(prefix="jwtkit-ui-browser.")
profile = tempfile.mkdtemp(prefix="jwtkit-ui-chromium.")
server = driver = None
try:
    # fixtures: a key pair, a token, the same token with its subject changed
    es, pub = os.path.join(work, "es.pem"), os.path.join(work, "es.pub.pem")
    run("keygen", "--alg", "ES256", "--out", es, "--pub", pub)
    token = run("sign", "--key", es, "--alg", "ES256", "--iss", "https://issuer.example", "--aud", "api",
                "--sub", "alice", "--ttl", "1h", "--nbf", str(int(time.time()) - 300)).strip()
    h, p, sig = token.split(".")
    raw = base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).replace(b"alice", b"mallo")
    tampered = "%s.%s.%s" % (h, base64.urlsafe_b64encode(raw).decode().rstrip("="), sig)
    jwks = run("jwks", pub)
    with open(es) as f:
        bad_pem = f.read()[:150]  # cut: no END line, truncated base64

    log = open(os.path.join(OUT, "server.log"), "w")
    server = subprocess.Popen([JWTKIT, "ui", "--listen", "127.0.0.1:0", "--log-level", "debug"],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    url = server.stdout.readline().strip()
    check("jwtkit ui printed its URL", url.startswith("http://127.0.0.1:"), url)
    origin = url.split("/?")[0]

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=960,820", "--user-data-dir=" + profile):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    wait = WebDriverWait(driver, 20)

    def by_id(i):
        return driver.find_element(By.ID, i)

    def css(sel):
        return driver.find_elements(By.CSS_SELECTOR, sel)

    def tab(name):
        driver.find_element(By.CSS_SELECTOR, "nav button[data-pane=%s]" % name).click()

    def fill(i, text):
        # set the value as a paste does (send_keys of long tokens is slow)
        driver.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                              "e.dispatchEvent(new Event('input'));", i, text)

    def shot(name, anchor=None):
        # the window from the anchor element down (the top of the page without one)
        if anchor:
            driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", anchor)
        else:
            driver.execute_script("window.scrollTo(0, 0)")
        path = os.path.join(OUT, "%s.png" % name)
        driver.save_screenshot(path)
        return path

    def until(cond):
        # True once cond(driver) holds, False after the wait's timeout
        try:
            wait.until(cond)
            return True
        except TimeoutException:
            return False

    def wait_for(sel, what):
        if until(EC.presence_of_element_located((By.CSS_SELECTOR, sel))):
            return True
        check(what, False, "(%s never appeared)" % sel)
        return False

    # ------------------------------------------------------------ no secret
    driver.get(origin + "/")
    wait_for("body[data-ready]", "the page starts")
    check("without the URL's secret the page says so", "No secret" in by_id("status").text)
    check("... and the API refused it", "403" in by_id("status").text, by_id("status").text)

    # ---------------------------------------------------------------- decode
    driver.get(url)
    wait_for("body[data-ready]", "the page starts with its secret")
    check("the secret is taken out of the address bar", "token=" not in driver.current_url, driver.current_url)
    check("... and the page names the library", "libjwtkit" in by_id("version").text)
    fill("decode-token", token)
    by_id("decode-run").click()
    if wait_for("#decode-out table.members", "decode answers"):
        out = by_id("decode-out")
        check("decode: an UNVERIFIED banner", "UNVERIFIED" in out.text)
        names = [e.get_attribute("data-name") for e in css("#decode-out table.members tr[data-name]")]
        check("decode: every claim in the table", all(n in names for n in ("iss", "sub", "aud", "iat", "nbf", "exp")),
              names)
        about = css("#decode-out tr[data-name=aud] td.about")
        check("decode: claims explained", about and "Audience" in about[0].text)
        marks = [e.get_attribute("data-name") for e in css("#lifetime g.marker")]
        check("decode: iat, nbf, exp and now on the time axis", sorted(marks) == ["exp", "iat", "nbf", "now"], marks)
        exp = css("#lifetime g.m-exp text")
        check("decode: exp relative to now", exp and exp[0].text.startswith("exp in "),
              exp[0].text if exp else "")
        check("decode: the accepted window and the leeway drawn",
              len(css("#lifetime rect.valid")) == 1 and len(css("#lifetime rect.leeway")) == 2)
        shot("decode", "#decode-out")

    # ---------------------------------------------------------------- verify
    tab("verify")
    fill("verify-token", token)
    fill("verify-keys", jwks)
    for box in css("input[name=alg][value=ES256]"):
        box.click()
    fill("verify-iss", "https://issuer.example")
    fill("verify-aud", "api")
    by_id("verify-run").click()
    if wait_for("#verify-verdict", "verify answers"):
        check("verify: a good token is VALID", by_id("verify-verdict").text.startswith("VALID"),
              by_id("verify-verdict").text)
        check("verify: no check failed", not css("#verify-out li.check.fail"))
        check("verify: the key that verified is shown", "Key that verified" in by_id("verify-out").text)
        shot("verify", "#verify-run")
    fill("verify-token", tampered)
    by_id("verify-run").click()
    check("verify: a tampered token is INVALID",
          until(lambda d: d.find_element(By.ID, "verify-verdict").text.startswith("INVALID")))
    failed_checks = [e.get_attribute("data-check") for e in css("#verify-out li.check.fail")]
    check("verify: the failed check shown is the signature", failed_checks == ["signature"], failed_checks)
    check("... with the library's reason", "bad signature" in by_id("verify-out").text)
    shot("verify-tampered", "#verify-verdict")

    # -------------------------------------------------------------- generate
    tab("generate")
    driver.find_element(By.CSS_SELECTOR, "button[data-template=access]").click()
    by_id("gen-run").click()
    if wait_for("#gen-verify", "generate answers"):
        out = by_id("gen-out").text
        check("generate: a token and the public JWK Set", "Public JWK Set" in out and "eyJ" in out)
        check("generate: the private key comes with a warning, hidden", "whoever holds this can mint" in out and
              not by_id("gen-private").is_displayed())
        shot("generate", "#gen-out")
        by_id("gen-verify").click()
        check("generate, then verify in the verify pane: VALID",
              until(lambda d: d.find_element(By.ID, "verify-verdict").text.startswith("VALID")))
        check("... the verify pane is shown", by_id("pane-verify").is_displayed())

    # ----------------------------------------------------------------- pem
    tab("pem")
    driver.execute_script("""
        const dt = new DataTransfer();
        dt.items.add(new File([arguments[0]], "cut.pem", {type: "application/x-pem-file"}));
        document.getElementById("pem-text").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true}));
        """, bad_pem)
    check("pem: a dropped file fills the field",
          until(lambda d: d.find_element(By.ID, "pem-text").get_attribute("value") == bad_pem))
    by_id("pem-run").click()
    if wait_for("#pem-verdict", "pem answers"):
        check("pem: a bad file has problems", "problem" in by_id("pem-verdict").text, by_id("pem-verdict").text)
        codes = [e.get_attribute("data-code") for e in css("#pem-out li.problem")]
        check("pem: the problem codes of jwtkit pem check", "missing-end" in codes, codes)
        shot("pem")

    # ---------------------------------------------------------------- plan
    tab("plan")
    for n in ("3", "4"):
        by_id("plan-keys").clear()
        by_id("plan-keys").send_keys(n)
        by_id("plan-run").click()
        check("plan: %s keys asked, %s key spans drawn" % (n, n),
              until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#plan-svg g.key-span")) == int(n)),
              len(css("#plan-svg g.key-span")))
    check("plan: pending, active and retiring segments",
          all(css("#plan-svg rect.seg.%s" % c) for c in ("pending", "active", "retiring")))
    check("plan: now marked", len(css("#plan-svg g.now")) == 1)
    check("plan: publish ahead and keep until tokens expire drawn",
          css("#plan-ahead g.bracket.ahead") and css("#plan-keep g.bracket.keep"))
    check("plan: the guarantee holds", "guarantee holds" in by_id("plan-verdict").text)
    shot("plan", "#plan-out")

    # ---------------------------------------------------------------- jwks
    tab("jwks")
    fill("jwks-text", json.dumps({"keys": json.loads(jwks)["keys"] + [{"kty": "oct", "k": "c2VjcmV0" * 6}]}))
    by_id("jwks-run").click()
    if wait_for("#jwks-out .card", "the JWK Set viewer answers"):
        cards = css("#jwks-out .card")
        check("jwks: a card per key", len(cards) == 2, len(cards))
        check("jwks: the secret key is flagged", "secret (oct) key" in cards[1].text)
        shot("jwks")

    # ------------------------------------------------------------ the net
    net = []
    for e in driver.get_log("performance"):
        m = json.loads(e["message"])["message"]
        if m.get("method") == "Network.requestWillBeSent":
            net.append(m["params"]["request"]["url"])
    # every request that reaches a network (the browser's own chrome:// pages do not)
    foreign = [u for u in net if u.split(":")[0] in ("http", "https", "ws", "wss", "ftp")
               and not u.startswith(origin + "/")]
    ours = [u for u in net if u.startswith(origin + "/")]
    check("the network log holds the page's requests (it works)", len(ours) > 10, len(ours))
    check("no request to any origin but the page's own", not foreign, foreign)
    res = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    check("... the page's resource timing agrees", all(u.startswith(origin + "/") for u in res),
          [u for u in res if not u.startswith(origin + "/")])
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and "/api/info - Failed to load resource: the server responded with a status of 403" not in e["message"]]
    check("no console error (a CSP violation would be one)", not errors, errors)
finally:
    if driver is not None:
        driver.quit()
    if server is not None:
        server.terminate()
        try:
            rc = server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            rc = server.wait()
        check("jwtkit ui stops cleanly", rc == 0, rc)
    shutil.rmtree(profile, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)

with open(os.path.join(OUT, "server.log")) as f:
    text = f.read()
check("the server's log holds no token", token[:40] not in text and "eyJ" not in text)
print("ui browser: %d passed, %d failed (screenshots in %s)" % (passed, failed, OUT))
sys.exit(1 if failed else 0)
