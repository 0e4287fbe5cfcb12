#!/usr/bin/env python3
"""Load for the nginx reload test: THREADS threads send GET requests with a
bearer token, one connection each (Connection: close), round robin over
the PATHS, until the file STOP exists.  Prints "ok N bad M" and up to 5
failures (status or error).  Usage: loader.py PORT TOKEN STOP THREADS PATH..."""
import http.client
import os
import sys
import threading
import time

port, token, stop, nthreads = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
paths = sys.argv[5:]
lock = threading.Lock()
ok, bad, seen = 0, 0, []


def run(i):
    global ok, bad
    n = i
    while not os.path.exists(stop):
        path = paths[n % len(paths)]
        n += 1
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path, headers={"Authorization": "Bearer " + token, "Connection": "close"})
            r = c.getresponse()
            r.read()
            c.close()
            good, what = r.status == 200, "%s -> %d" % (path, r.status)
        except Exception as e:  # a refused or reset connection is a failed request
            good, what = False, "%s -> %s" % (path, e)
        with lock:
            if good:
                ok += 1
            else:
                bad += 1
                if len(seen) < 5:
                    seen.append(what)


threads = [threading.Thread(target=run, args=(i,)) for i in range(nthreads)]
for t in threads:
    t.start()
deadline = time.time() + 600
while not os.path.exists(stop) and time.time() < deadline:
    time.sleep(0.1)
open(stop, "a").close()
for t in threads:
    t.join()
print("ok %d bad %d" % (ok, bad))
for s in seen:
    print("failed: " + s)
