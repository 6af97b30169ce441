"""``python -m filters.cli``: the ``attnslides`` command (each deck of a parallel build runs so)."""

import sys

from filters.cli.main import main

sys.exit(main())
