"""``python -m biofeed``: the command line."""

import sys

from biofeed.cli import main

sys.exit(main())
