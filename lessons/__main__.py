"""``python -m lessons``: the plain runner (see :mod:`lessons.plain`)."""

from __future__ import annotations

import sys

from lessons.plain import main
from lessons.users import settle

settle()  # root mode via sudo: this student's own kit root
sys.exit(main())
