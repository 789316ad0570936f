"""The `nanocnn` command: its subcommands, grouped in modules by what they work on (train; evaluate, predict
and summary; plot; export and import; serve). Bad input: one line, exit status 2.

Exactly two kinds of exception are the user's: ``UserError`` (a bad value, file, or data) and
``OSError`` (a file that cannot be read or written). Each becomes ``error: <message>`` on stderr and
exit status 2. Anything else is a bug in nanocnn, and Python shows its traceback.
"""

import sys

from ..validation import UserError, one_line
from . import evaluate, export, plot, serve, train
from .common import Parser

USAGE_ERROR = 2
MODULES = (train, evaluate, plot, export, serve)


def build_parser():
    parser = Parser(prog="nanocnn", description="A convolutional neural network from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv=None):
    """Entry point; returns the exit status."""
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        args.run(args)
    except (UserError, OSError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        hint = " (a run can be continued with: nanocnn train --resume --out DIR)" if command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        return 130
    return 0
