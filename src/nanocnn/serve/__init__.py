"""`nanocnn serve`: a page where you draw a digit and watch the network, and the JSON API behind it.

server.py    the threaded HTTP server, its names, its life from listen to Ctrl-C
handler.py   one connection: strict checks of every request, JSON errors, security headers
routes.py    every path answered, in one table
api.py       what the API answers, from one trace of the network per request
requests.py  what a request may hold         views/   one module per view the page shows
web/         the page: index.html, style.css and one JavaScript module per view (js/)
"""

from .api import Api, ApiError, Samples
from .server import Server, serve

__all__ = ["Api", "ApiError", "Samples", "Server", "serve"]
