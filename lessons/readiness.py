"""Can this lesson run here? The doctor's answer for a lesson's ``requires`` keys.

Every lesson declares what it needs from the machine (``Lesson.requires``: "root", "overlay",
"cgroup:memory", "tool:umoci" ... see :mod:`kit.doctor.requirements`). Before a lesson runs,
the plain runner, the instructor's ``--check-all`` and the TUI (a mark in the lesson list,
and the reason above the lesson's text) ask here; a blocked lesson says what blocks it and
the exact fix instead of failing halfway. The doctor's checks run once per
process (about a second) and are reused for every lesson.
"""

from __future__ import annotations

import threading

from kit.doctor.requirements import Assessment, Facts
from lessons.model import Lesson

_facts: Facts | None = None
_lock = threading.Lock()


def facts() -> Facts:
    """This machine's doctor checks, gathered on first use."""
    global _facts
    with _lock:
        if _facts is None:
            _facts = Facts.gather()
        return _facts


def remember(found: Facts) -> None:
    """Use these checks from now on: the TUI's doctor has just run them (at start, or when
    the learner asks it to check again after a fix), so they are not run twice."""
    global _facts
    with _lock:
        _facts = found


def assess(lesson: Lesson, known: Facts | None = None) -> Assessment:
    """Whether ``lesson`` can run here, and if not, why and the fix."""
    return (known or facts()).assess(lesson.requires)
