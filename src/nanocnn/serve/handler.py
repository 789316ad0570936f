"""One connection's HTTP requests: the routes of routes.py, strict checks of every request, JSON errors.

Defences, since any web page the user visits can make the browser send requests here: the Host header must
be one of the server's own names (against DNS rebinding), a POST's Origin, when sent, must be the server's own,
no CORS header is ever sent, and every response carries a strict Content-Security-Policy. A POST body is
bounded (413 before a byte is read), must arrive in time (408) and be JSON (415, 400). Errors are one-line
JSON ({"error": ...}); a bug gives a generic 500 and its traceback goes to the server's stderr only.
"""

import json
import socket
import time
import traceback
from http.server import BaseHTTPRequestHandler

from ..validation import UserError, one_line, reject_constant
from .api import ApiError
from .log import log, printable
from .routes import EMPTY, JSON_TYPE, method_of

MAX_BODY = 2**20  # bytes of a POST body; larger gets 413 before a byte of it is read
TIMEOUT = 10  # seconds a client may take for each read or write, and for a whole request body
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests: the fixed routes, JSON errors, the security headers on every answer."""

    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length; errors close the connection
    disable_nagle_algorithm = True  # TCP_NODELAY: the body follows the headers at once, not ~40 ms later
    default_request_version = "HTTP/1.0"  # not 0.9: a garbled request line still gets a status line and headers
    timeout = TIMEOUT

    def version_string(self):
        return "nanocnn"

    def handle_expect_100(self):
        """`100 Continue` only for a body we may read: a client that asks first never sends one too large."""
        length = self.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) <= MAX_BODY:
            return super().handle_expect_100()
        return True

    def do_GET(self):
        self.answer()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def answer(self):
        start = time.perf_counter()
        try:
            status, body, kind = self.route()
        except UserError as e:
            status, body, kind = 400, error_json(e), JSON_TYPE
        except ApiError as e:
            status, body, kind = e.status, error_json(e), JSON_TYPE
        except TimeoutError:
            status, body, kind = 408, error_json("the request body did not arrive in time"), JSON_TYPE
        except Exception:  # a bug: a generic 500, the traceback in the log only, and serve on
            log(
                f"{self.client_address[0]} {self.command} {printable(self.path)}: internal error\n"
                f"{traceback.format_exc().rstrip()}"
            )
            status, body, kind = 500, error_json("internal error (the server's log has the details)"), JSON_TYPE
        self.send(status, body, kind)
        if not self.server.quiet or status >= 500:
            log(
                f"{self.client_address[0]} {self.command} {printable(self.path)} {status} "
                f"{(time.perf_counter() - start) * 1000:.1f} ms"
            )

    def route(self):
        """-> (status, body bytes, content type), as routes.py says. Raises UserError (400) or ApiError."""
        if not self.server.own_host(self.headers.get("Host", "")):
            raise ApiError(
                403,
                f"Host {printable(self.headers.get('Host', '(none)'), 60)!r} is not this server's "
                f"(use {self.server.url('127.0.0.1')})",
            )
        path, _, query = self.path.partition("?")
        allowed = method_of(path, self.server.pages, self.server.routes)
        if allowed is None:
            raise ApiError(404, f"no such page: {printable(path, 60)}")
        method = "GET" if self.command == "HEAD" else self.command
        if method != allowed:
            raise ApiError(405, f"{path} takes {allowed}, not {printable(self.command, 20)}")
        route = self.server.routes.get(path)
        if query and not (route and route.query):
            raise UserError(f"{path} takes no query string, got {printable(query, 60)!r}")
        if path in self.server.pages:
            body, kind = self.server.pages[path]
            return 200, body, kind
        if path in EMPTY:
            return 204, b"", None
        answer = getattr(self.server.api, route.answer)
        args = (self.read_json(),) if route.method == "POST" else (query,) if route.query else ()
        result = answer(*args)
        return 200, result if isinstance(result, bytes) else to_json(result), JSON_TYPE  # bytes: JSON already

    def read_json(self):
        """The POST body as JSON, checked in this order: Origin 403, length 411/400/413, type 415, JSON 400."""
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{self.headers.get('Host', '').strip().lower()}":
            raise ApiError(403, f"Origin {printable(origin, 60)!r} is not this server's")
        length = self.headers.get("Content-Length")
        if length is None or "Transfer-Encoding" in self.headers:
            raise ApiError(411, "a POST needs a Content-Length header (chunked bodies are not accepted)")
        if not (length.isascii() and length.isdigit()) or len(length) > 12:
            raise UserError(f"Content-Length must be a number of bytes, got {printable(length, 20)!r}")
        if int(length) > MAX_BODY:
            raise ApiError(413, f"the body is {int(length):,} bytes, more than the {MAX_BODY:,} allowed")
        kind, _, params = self.headers.get("Content-Type", "").partition(";")
        charset = params.strip().lower().replace('"', "")
        if kind.strip().lower() != JSON_TYPE or charset not in ("", "charset=utf-8"):
            raise ApiError(
                415,
                f"the body must be {JSON_TYPE} (UTF-8), got "
                f"{printable(self.headers.get('Content-Type', '(none)'), 60)!r}",
            )
        raw = self.read_body(int(length))
        if len(raw) != int(length):
            raise UserError(f"the body ended after {len(raw)} of its {int(length)} bytes")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
            raise UserError(f"the body is not valid JSON: {str(e).splitlines()[0]}") from None
        except RecursionError:
            raise UserError("the body is not valid JSON: nested too deeply") from None

    def read_body(self, length):
        """Up to ``length`` bytes of the body, which must all arrive within TIMEOUT seconds (else 408): a
        client sending a byte now and then cannot hold a thread."""
        deadline, chunks, got = time.monotonic() + TIMEOUT, [], 0
        try:
            while got < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(length - got, 2**16))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except TimeoutError:
            raise ApiError(408, f"the body did not arrive within {TIMEOUT} s") from None
        finally:
            self.connection.settimeout(TIMEOUT)
        return b"".join(chunks)

    def send(self, status, body, kind):
        """Write one answer with the common headers; an error closes the connection (its body may be unread)."""
        self.send_response(status)
        for name, value in COMMON_HEADERS.items():
            self.send_header(name, value)
        if kind:
            self.send_header("Content-Type", kind)
        path = getattr(self, "path", "").partition("?")[0]  # unset when the request line was malformed
        self.send_header("Cache-Control", "no-cache" if path in self.server.pages and status == 200 else "no-store")
        if status == 405:
            allowed = method_of(path, self.server.pages, self.server.routes)
            self.send_header("Allow", "GET, HEAD" if allowed == "GET" else "POST")
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        if status >= 400:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        if status >= 400:
            self.linger()

    def linger(self):
        """Before closing after an error, read and drop what the client still sends (at most 1 MiB, 1 s):
        closing a socket with unread data resets the connection, and the client could lose our answer."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.25)
            deadline, dropped = time.monotonic() + 1, 0
            while time.monotonic() < deadline and dropped <= MAX_BODY:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                dropped += len(chunk)
        except OSError:
            pass

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line, a header too long, an unknown method) as JSON."""
        self.send(code, error_json(message or "bad request"), JSON_TYPE)

    def log_request(self, code="-", size="-"):
        pass  # answer() logs each request once, with its time

    def log_message(self, format, *args):
        if self.server.quiet and format.startswith("Request timed out"):
            return  # an idle keep-alive connection closed: routine, and the live page's terminal is the run's
        log(f"{self.client_address[0]} {printable(format % args)}")


def error_json(error):
    return to_json({"error": one_line(error)})


def to_json(value):
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
