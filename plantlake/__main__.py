from __future__ import annotations

import sys

from plantlake.cli import main

sys.exit(main())
