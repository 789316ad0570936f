"""`nanocnn serve`: a page where you draw a digit and watch the network, and the JSON API behind it; and the
page of `nanocnn train --live`, which shows a run as it trains.

server.py    the threaded HTTP server, its names, its life from listen to Ctrl-C
handler.py   one connection: strict checks of every request, JSON errors, security headers
routes.py    every path answered, in one table per server
live.py      `train --live`: the run's state, recorded between optimizer steps, and its server
api.py       what the API answers, from one trace of the network per request
requests.py  what a request may hold         views/   one module per view the page shows
web/         the pages: index.html (serve), live.html (train --live), style.css and JavaScript modules (js/)
"""

from .api import Api, ApiError, Samples
from .server import Server, serve

__all__ = ["Api", "ApiError", "Samples", "Server", "serve"]
