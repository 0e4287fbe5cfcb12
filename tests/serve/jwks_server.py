#!/usr/bin/env python3
"""A loopback JWK Set server for tests/serve/pkjwt_uri_test.sh.

jwks_server.py DIR PORT: GET /NAME answers the file DIR/NAME (200, with
the Cache-Control value in DIR/NAME.cc when that file exists) or 404, and appends "NAME" to DIR/requests.log before
answering, so a test counts the fetches of each set.  It stops by itself
after 300 s (a watchdog, should the test die without killing it).
"""
import http.server
import os
import sys
import threading

root, port = sys.argv[1], int(sys.argv[2])


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.lstrip("/")
        with open(os.path.join(root, "requests.log"), "a") as f:
            f.write(name + "\n")
        p = os.path.join(root, name)
        if "/" in name or not os.path.isfile(p):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = open(p, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if os.path.isfile(p + ".cc"):
            self.send_header("Cache-Control", open(p + ".cc").read().strip())
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
threading.Timer(300, os._exit, (0,)).start()
s.serve_forever()
