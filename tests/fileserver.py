"""A real HTTP server on 127.0.0.1 serving bytes the tests generate (for the download tests)."""

from __future__ import annotations

import collections
import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answer GET /<name> with the server's route for <name>; 404 for anything else."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "File not found")
        else:
            route(self, self.server.hits[self.path])

    def log_message(self, *args):
        pass


class FileServer:
    """A threaded HTTP server on 127.0.0.1 (port 0) whose routes the tests define."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.routes = {}
        self.httpd.hits = collections.Counter()
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def add(self, name, route):
        """Serve ``route(handler, n_th_request)`` at /name; return its URL."""
        self.httpd.routes[f"/{name}"] = route
        return self.url(name)

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def hits(self, name):
        return self.httpd.hits[f"/{name}"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def send_bytes(body, content_length=None):
    """A route sending ``body`` after announcing ``content_length`` bytes (default: all)."""

    def route(handler, n_th_request):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(content_length or len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True  # a short body then ends with the connection

    return route
