"""``python -m streamgenre``."""

import sys

from streamgenre.cli import main

sys.exit(main())
