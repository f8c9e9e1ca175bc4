"""Helpers of the extractor tests: a file server on 127.0.0.1, and an environment without caches.

The real weight files cannot be downloaded here; the download paths are tested against files
generated in the exact layout of the real ones and served locally.
"""

from __future__ import annotations

import hashlib
import http.server
import threading


class LocalServer:
    """Serves a dict {path: bytes} on 127.0.0.1 from a background thread (a context manager)."""

    def __init__(self, files):
        served = files

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                body = served.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def isolate(tmp_path, monkeypatch, *env_prefixes):
    """No user cache, no torch hub cache, no home cache, and no ``OTMETRICS_*`` variable with one
    of ``env_prefixes``; returns ``tmp_path``."""
    import os

    import torch

    monkeypatch.setenv("OTMETRICS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in list(os.environ):
        if name.startswith(tuple(f"OTMETRICS_{prefix}" for prefix in env_prefixes)):
            monkeypatch.delenv(name)
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return tmp_path
