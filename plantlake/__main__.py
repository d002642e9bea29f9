from __future__ import annotations

import sys

from plantlake.app.cli import main

sys.exit(main())
