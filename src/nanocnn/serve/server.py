"""The HTTP server of `nanocnn serve`: the standard library's threaded server on IPv4 or IPv6, the names it
answers to, and its life from listening to Ctrl-C. Each connection is a handler.Handler; what it answers
is routes.py's table; what the answers hold is api.py's.
"""

import ipaddress
import signal
import socket
import socketserver
import sys
import threading
import traceback
from http.server import ThreadingHTTPServer

from ..backend.blas import single_thread
from ..validation import UserError
from .handler import Handler
from .log import log
from .routes import API, read_pages


def is_loopback(host):
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): the only hosts that keep the page private."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host):
    """The one-line warning printed when the server listens on a non-loopback address, or None."""
    if is_loopback(host):
        return None
    return (
        f"warning: listening on {host}, not on 127.0.0.1: the page and its API are reachable from other "
        "machines that can reach this one"
    )


def warn_if_exposed(host):
    """Print ``exposure_warning(host)`` to stderr, if there is one."""
    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def open_server(host, port, what="", **options):
    """A Server listening on host:port (``options`` as Server takes them); an address it cannot listen on (a port
    in use, say) is a one-line UserError, its text after ``what``."""
    try:
        return Server(host, port, **options)
    except OSError as e:
        raise UserError(f"{what}cannot listen on {bracketed(host)}:{port}: {e.strerror or e}") from None


def bracketed(host):
    """An IPv6 address in a URL or Host header is written in brackets: ::1 -> [::1]."""
    return f"[{host}]" if ":" in host else host


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer on IPv4 or IPv6, with the API and the names it answers to."""

    daemon_threads = True  # requests still running do not hold up the exit
    request_queue_size = 64

    def __init__(self, host, port, api=None, quiet=False, routes=API, index="index.html"):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.api, self.quiet, self.routes, self.pages = api, quiet, routes, read_pages(index)
        self.port = self.server_address[1]
        names = {"127.0.0.1", "localhost", "[::1]", bracketed(host.lower())}
        self.hosts = {f"{name}:{self.port}" for name in names} | (names if self.port == 80 else set())
        # Bound to every interface, the page is opened by the machine's address, which no DNS name can
        # rebind to: any IP literal with our port is one of our own names.
        self.any_ip = host in ("0.0.0.0", "::", "")

    def server_bind(self):
        """Bind without HTTPServer's reverse DNS lookup of the address (slow, or stuck, offline)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def url(self, host):
        return f"http://{bracketed(host)}:{self.port}/"

    def own_host(self, value):
        """Is this Host header one of the server's own names (host:port)?"""
        value = value.strip().lower()
        if value in self.hosts:
            return True
        name, sep, port = value.rpartition(":")
        if not (self.any_ip and sep and port == str(self.port)):
            return False
        try:
            ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
        except ValueError:
            return False
        return True

    def handle_error(self, request, client_address):
        """An exception that escaped a handler (a client gone, a timeout): one line, or a bug's traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log(f"{client_address[0]} connection dropped: {type(error).__name__}")
        else:
            log(f"{client_address[0]} internal error:\n{traceback.format_exc().rstrip()}")


def serve(make_api, host="127.0.0.1", port=8000, quiet=False):
    """Listen on host:port (0: any free port), make the API (``make_api()``: loading test images takes a few
    seconds, so a port already taken fails first), print `serving on http://HOST:PORT/`, and answer until
    Ctrl-C or SIGTERM; then close the socket and return."""
    server = open_server(host, port, quiet=quiet)

    def stop(signum, frame):
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
    previous = signal.signal(signal.SIGTERM, stop) if main else None
    try:
        server.api = make_api()
        warn_if_exposed(host)
        print(f"serving on {server.url(host)}", flush=True)  # connections made from now on are answered
        # Requests run on threads of their own, BLAS on one thread each (held here: OpenBLAS takes its
        # thread count from the main thread only), or its threads would fight them for the cores.
        with single_thread():
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr, flush=True)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        server.server_close()
