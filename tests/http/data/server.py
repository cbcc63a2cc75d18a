#!/usr/bin/env python3
"""The http suite's test server: real HTTP/1.1 over real sockets.

  server.py DIR

Makes a test CA, a server certificate (127.0.0.1, localhost) and a client
certificate in DIR with the openssl CLI, then listens on four endpoints:
plain TCP, TLS, TLS requiring a client certificate (mTLS), and a unix
socket DIR/http.sock. Prints one JSON line naming them and serves until its
stdin closes, so it never outlives the test that started it.

Endpoints (every listener serves them all):
  /echo              JSON of the request: method, path, headers (lower-cased
                     names), body (Content-Length or chunked), peer port
  /lines             a chunked body whose lines are split across chunks
  /hang              headers and a "started" line, then nothing until the
                     client goes away
  /hang-headers      nothing at all until the client goes away
  /drop?key=K&times=N
                     the first N requests for K are dropped: the connection
                     closes without an answer
  /status?code=C&key=K&times=N&json=1|text=1
                     answers C (the first N times for K, then 200), with a
                     JSON {"message"} or a two-line text body
  /count?key=K       how many requests /drop and /status saw for K
  /redirect?to=URL&code=C
                     a redirect (302 by default) to URL
  /big?n=N           a body of N bytes
  /whoami            the client certificate's common name ("" without one)
"""
import json
import os
import select
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {}
COUNTS_LOCK = threading.Lock()


def count(key):
    with COUNTS_LOCK:
        COUNTS[key] = COUNTS.get(key, 0) + 1
        return COUNTS[key]


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    p = lambda name: os.path.join(d, name)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=launch test CA", "-keyout", p("ca.key"), "-out", p("ca.pem"))
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "launch-test-client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
                "-keyout", p(name + ".key"), "-out", p(name + ".csr"))
        extra = ["-extfile", p("server.ext")] if name == "server" else []
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"),
                "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2",
                "-out", p(name + ".pem"), *extra)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def address_string(self):
        return "test"

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, code, body, content_type="text/plain", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def wait_for_client_to_leave(self):
        # Readable means the client closed (or sent more): either way, done.
        select.select([self.connection], [], [], 120)
        self.close_connection = True

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        body = self.read_body()
        route = url.path
        if route == "/echo":
            peer = self.client_address[1] if isinstance(self.client_address, tuple) else 0
            self.answer(200, json.dumps({
                "method": self.command, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("latin-1"), "peer_port": peer,
            }), "application/json", [("X-Served-By", "launch-test")])
        elif route == "/lines":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"alpha\nbe", b"ta\r\n", b"\n", b"gam", b"ma"):
                self.chunk(piece)
            self.chunk(b"")
        elif route == "/hang":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.chunk(b"started\n")
            self.wait_for_client_to_leave()
        elif route == "/hang-headers":
            self.wait_for_client_to_leave()
        elif route == "/drop":
            if count(q["key"]) <= int(q.get("times", "1")):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.answer(200, "made it\n")
        elif route == "/status":
            code = int(q["code"])
            if "key" in q and count(q["key"]) > int(q.get("times", "1")):
                code = 200
            if q.get("json"):
                self.answer(code, json.dumps({"message": "no such thing here"}),
                            "application/json")
            else:
                self.answer(code, "first line of the trouble\nsecond line\n")
        elif route == "/count":
            with COUNTS_LOCK:
                self.answer(200, str(COUNTS.get(q["key"], 0)))
        elif route == "/redirect":
            self.answer(int(q.get("code", "302")), "", headers=[("Location", q["to"])])
        elif route == "/big":
            self.answer(200, b"x" * int(q["n"]))
        elif route == "/whoami":
            cn = ""
            getpeercert = getattr(self.connection, "getpeercert", None)
            cert = getpeercert() if getpeercert else None
            for rdn in (cert or {}).get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cn = v
            self.answer(200, cn)
        else:
            self.answer(404, json.dumps({"message": "no route " + route}), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class Quiet:
    # Dropped and refused connections are what the tests are about.
    def handle_error(self, request, client_address):
        pass


class TcpServer(Quiet, ThreadingHTTPServer):
    daemon_threads = True


class UnixServer(Quiet, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def tls_server(d, require_client_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.pem"), os.path.join(d, "server.key"))
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(os.path.join(d, "ca.pem"))
    server = TcpServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


def main():
    d = sys.argv[1]
    make_certs(d)
    plain = TcpServer(("127.0.0.1", 0), Handler)
    tls = tls_server(d, False)
    mtls = tls_server(d, True)
    sock_path = os.path.join(d, "http.sock")
    unix = UnixServer(sock_path, Handler)
    servers = [plain, tls, mtls, unix]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(json.dumps({"http": plain.server_address[1], "https": tls.server_address[1],
                      "mtls": mtls.server_address[1], "unix": sock_path}), flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    for s in servers:
        s.shutdown()


if __name__ == "__main__":
    main()
