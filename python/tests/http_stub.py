"""A scripted HTTP server on 127.0.0.1 for the tests (real HTTP, in a thread): each POST is answered by
`respond(path, body)`, which returns (status, headers, body text); it records every request's body and headers."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Response = tuple[int, dict[str, str], str]


class StubServer:
    def __init__(self, respond: Callable[[str, str], Response], path: str = "/v1") -> None:
        self.bodies: list[str] = []
        self.headers: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"])).decode("utf-8")
                owner.bodies.append(body)
                owner.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, headers, text = respond(self.path, body)
                data = text.encode("utf-8")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
