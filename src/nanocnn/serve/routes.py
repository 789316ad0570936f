"""Every path the servers answer, in one table each: the page's files and the JSON API. Nothing else is served.

The page's files are the package's ``web/`` folder, read once at start (never a path from a request); "/" is
the server's own page (index.html for `nanocnn serve`, live.html for `nanocnn train --live`).
An API route names its method, whether it takes a query string, and the method of the server's API object
that answers it: adding an endpoint is one line here and one method in api.py (or live.py).
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
    "/api/curves": Route("GET", "curves"),
}
LIVE = {  # `nanocnn train --live`: the state of the run, and the fixed test digits it shows
    "/api/live": Route("GET", "state"),
    "/api/live/digits": Route("GET", "digits"),
}
EMPTY = {"/favicon.ico"}  # answered 204, no body: browsers ask for it


def read_pages(index="index.html"):
    """path -> (bytes, content type) for every file of the page: "/" for ``index``, "/<name>" for the others."""
    pages = {}

    def walk(folder, prefix):
        for item in sorted(folder.iterdir(), key=lambda f: f.name):
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif "." + item.name.rpartition(".")[2] in TYPES:
                if item.name.endswith(".html") and prefix + item.name != f"/{index}":
                    continue  # the other server's page
                path = "/" if prefix + item.name == f"/{index}" else prefix + item.name
                pages[path] = (item.read_bytes(), TYPES["." + item.name.rpartition(".")[2]])

    walk(resources.files("nanocnn.serve").joinpath("web"), "/")
    return pages


def method_of(path, pages, routes):
    """The one method a path takes ("GET" for the page's files), or None for a path that is not served."""
    if path in pages or path in EMPTY:
        return "GET"
    return routes[path].method if path in routes else None
