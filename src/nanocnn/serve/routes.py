"""Every path the server answers, in one table: the page's files and the JSON API. Nothing else is served.

The page's files are the package's ``web/`` folder, read once at start (never a path from a request).
An API route names its method, whether it takes a query string, and the ``Api`` method that answers it:
adding an endpoint is one line here and one method in api.py.
"""

from dataclasses import dataclass
from importlib import resources

JSON_TYPE = "application/json"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Route:
    """One API path: its method, whether it takes a query string, and the Api method that answers it."""

    method: str  # "GET" or "POST" (a POST's body is JSON, checked by the handler before the Api sees it)
    answer: str  # the Api method: api.<answer>(body) for a POST, api.<answer>(query) or api.<answer>() for a GET
    query: bool = False


API = {
    "/api/info": Route("GET", "info"),
    "/api/sample": Route("GET", "sample", query=True),
    "/api/predict": Route("POST", "predict"),
    "/api/explain": Route("POST", "explain"),
    "/api/backward": Route("POST", "backward"),
    "/api/teach": Route("POST", "teach"),
    "/api/geometry": Route("GET", "geometry", query=True),
}
EMPTY = {"/favicon.ico"}  # answered 204, no body: browsers ask for it


def read_pages():
    """path -> (bytes, content type) for every file of the page: "/" for index.html, "/<name>" for the others."""
    pages = {}

    def walk(folder, prefix):
        for item in sorted(folder.iterdir(), key=lambda f: f.name):
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif "." + item.name.rpartition(".")[2] in TYPES:
                path = "/" if prefix + item.name == "/index.html" else prefix + item.name
                pages[path] = (item.read_bytes(), TYPES["." + item.name.rpartition(".")[2]])

    walk(resources.files("nanocnn.serve").joinpath("web"), "/")
    return pages


def method_of(path, pages):
    """The one method a path takes ("GET" for the page's files), or None for a path that is not served."""
    if path in pages or path in EMPTY:
        return "GET"
    return API[path].method if path in API else None
