"""python -m nanocnn: the same as the `nanocnn` command."""

import sys

from .cli import main

sys.exit(main())
