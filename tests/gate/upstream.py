#!/usr/bin/env python3
"""Tiny upstream for the gate tests: answers every request 200 with the
X-* request headers and Authorization it received, one "Name: value" per
line, so a test can see which claim headers (and whether the token) the
proxy passed on.  Usage: upstream.py PORT"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)  # keep the connection usable
        lines = [f"{k}: {v}" for k, v in self.headers.items() if k.lower().startswith("x-") or k.lower() == "authorization"]
        body = ("upstream ok\n" + "\n".join(sorted(lines)) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, fmt, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
