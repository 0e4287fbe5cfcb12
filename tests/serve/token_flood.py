#!/usr/bin/env python3
"""POST /token as fast as one keep-alive connection allows, from chosen
loopback source addresses (tests/serve/hostile_test.sh).

    token_flood.py PORT CLIENT SECRET COUNT SOURCE [SOURCE...]

Sends COUNT requests with Basic credentials CLIENT:SECRET, round-robin over
one connection per SOURCE address (127.x.y.z), one after the other.
Prints JSON: statuses and their counts, how many were answered before the
first 429, whether every 429 carried a Retry-After of at least 1 s, the
429 error descriptions, and the seconds the run took.
"""
import base64
import http.client
import json
import sys
import time


def main():
    port, client, secret, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    sources = sys.argv[5:]
    auth = "Basic " + base64.b64encode(("%s:%s" % (client, secret)).encode()).decode()
    conns = {}
    statuses, descs = {}, {}
    before = None
    retry_ok = True
    t0 = time.monotonic()
    for i in range(count):
        src = sources[i % len(sources)]
        for attempt in range(2):
            c = conns.get(src)
            if c is None:
                c = conns[src] = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(src, 0))
            try:
                c.request("POST", "/token", body="grant_type=client_credentials",
                          headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
                r = c.getresponse()
                body = r.read()
                break
            except (OSError, http.client.HTTPException):
                c.close()
                conns[src] = None
        else:
            statuses["error"] = statuses.get("error", 0) + 1
            continue
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        if r.status == 429:
            if before is None:
                before = i
            ra = r.getheader("Retry-After", "")
            if not ra.isdigit() or int(ra) < 1:
                retry_ok = False
            d = json.loads(body).get("error_description", "")
            descs[d] = descs.get(d, 0) + 1
        if r.getheader("Connection", "").lower() == "close":
            c.close()
            conns[src] = None
    for c in conns.values():
        if c is not None:
            c.close()
    print(json.dumps({"statuses": statuses, "before_first_429": count if before is None else before,
                      "retry_after_ok": retry_ok, "descriptions_429": descs,
                      "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
