"""The server's log: one line per event on stderr, with the time; text from clients made safe to print."""

import sys
import time


def log(line):
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def printable(text, limit=120):
    """Client-supplied text as it may appear in the log: printable ASCII, cut to ``limit``."""
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."
