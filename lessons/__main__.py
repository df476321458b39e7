"""``python -m lessons``: the plain runner (see :mod:`lessons.plain`)."""

from __future__ import annotations

import sys

from lessons.plain import main

sys.exit(main())
