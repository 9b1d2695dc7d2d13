"""``python -m memcorr …``: the same command line as the ``memcorr`` console script."""

import sys

from .cli import main

sys.exit(main())
