"""Real receivers for alert tests, on 127.0.0.1: an HTTP server recording every POST, and a small SMTP
server (socketserver) recording every message. Nothing is mocked: aigentflow talks to them over TCP."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def http_receiver(status: int = 200) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(base URL, the posts received: path, headers, JSON body)."""
    posts: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            posts.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_receiver() -> Iterator[tuple[int, list[Message]]]:
    """(port, the messages received): EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""
    messages: list[Message] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write((line + "\r\n").encode())

        def handle(self) -> None:
            self.reply("220 test ESMTP")
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                verb = raw.decode(errors="replace").strip().split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250 test")
                elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with .")
                    lines = []
                    while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                        lines.append(line[1:] if line.startswith(b"..") else line)
                    messages.append(message_from_bytes(b"".join(lines)))
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("502 not implemented")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], messages
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
