#!/usr/bin/env python3
"""Raw HTTP exchanges over a loopback socket, for framing tests.

    raw_http.py send PORT 'BYTES' ['MORE BYTES' ...]
        Sends each argument (Python escapes: \\r \\n \\xNN) 0.2 s apart, then
        reads until the server closes or 3 s pass.  Prints JSON: the status
        of the first response, how many status lines came back (a second
        one means something was read as a next request, or the answer was
        written twice), whether the first carried Connection: close,
        whether the server closed the connection, and the seconds it took.

    raw_http.py stream PORT 'HEADERS' SECONDS
        Sends the request head, then chunked body data (64 KiB chunks) for
        up to SECONDS or until the server stops it; prints JSON: bytes of
        body sent, the status that came back, whether the server closed,
        and the seconds until it did.
"""
import json
import select
import socket
import sys
import time


def unescape(s):
    return s.encode("latin1").decode("unicode_escape").encode("latin1")


def read_all(s, deadline):
    out = b""
    closed = False
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            closed = True
            break
        if not b:
            closed = True
            break
        out += b
    return out, closed


def describe(out):
    head = out.split(b"\r\n\r\n", 1)[0].decode("latin1")
    lines = head.split("\r\n")
    status = lines[0].split(" ")[1] if lines and lines[0].startswith("HTTP/") else ""
    close = any(l.lower().replace(" ", "") == "connection:close" for l in lines[1:])
    retry = any(l.lower().startswith("retry-after:") for l in lines[1:])
    nresp = out.count(b"HTTP/1.1 ") + out.count(b"HTTP/1.0 ")
    return status, close, retry, nresp


def cmd_send(port, parts):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    for i, p in enumerate(parts):
        if i:
            time.sleep(0.2)
        try:
            s.sendall(unescape(p))
        except OSError:
            break
    out, closed = read_all(s, time.monotonic() + 3)
    s.close()
    status, close, retry, nresp = describe(out)
    print(json.dumps({"status": status, "responses": nresp, "connection_close": close, "retry_after": retry,
                      "closed": closed, "seconds": round(time.monotonic() - t0, 3),
                      "text": out[:2000].decode("latin1")}))


def cmd_stream(port, head, seconds):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(unescape(head))
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    sent = 0
    t0 = time.monotonic()
    end = t0 + seconds
    s.setblocking(False)
    out = b""
    closed = False
    while time.monotonic() < end and not closed:
        r, w, _ = select.select([s], [s], [], 0.1)
        if r:
            try:
                b = s.recv(65536)
            except OSError:
                b = b""
            if not b:
                closed = True
                break
            out += b
        if w:
            try:
                n = s.send(chunk)
                sent += n
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            except BlockingIOError:
                pass
    t_closed = time.monotonic() - t0
    if not closed:
        more, closed = read_all(s, time.monotonic() + 1)
        out += more
    s.close()
    status, close, _, nresp = describe(out)
    print(json.dumps({"status": status, "responses": nresp, "connection_close": close, "closed": closed,
                      "body_bytes_sent": sent, "seconds": round(t_closed, 3)}))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "send":
        cmd_send(int(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 5 and sys.argv[1] == "stream":
        cmd_stream(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
