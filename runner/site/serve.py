"""`grader site serve`: a static file server for the built site, on loopback."""
from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_server(directory: Path, port: int = 0, host: str = "127.0.0.1", quiet: bool = True) -> ThreadingHTTPServer:
    """A static file server for the built site on loopback; port 0 picks a free port."""
    handler = partial(_QuietHandler if quiet else _Handler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(directory: Path, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; returns the server (call .shutdown()) and its base URL."""
    server = make_server(directory, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/"


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".ipynb": "application/x-ipynb+json",
                      ".py": "text/x-python; charset=utf-8"}


class _QuietHandler(_Handler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass
