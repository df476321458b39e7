"""kit's curriculum: lessons that teach how a container gets its filesystem, on the real engine.

Layers (see ARCHITECTURE.md): ``tui.py`` presents, ``lessons`` teaches, ``kit`` does. This
package never imports Textual; the TUI, the plain runner (``python -m lessons``) and the tests
all drive the same classes.

* :mod:`lessons.model` — :class:`Lesson`, :class:`Step`, :class:`Challenge`, :class:`Question`,
  :class:`Verdict`: what a lesson is.
* :mod:`lessons.context` — :class:`StepContext`: what a step's ``run`` and ``check`` may use.
* :mod:`lessons.session` — :class:`Session`: runs steps in order (replaying after a restart),
  checks them, opens shells, tears everything down.
* :mod:`lessons.observe` — observations of kernel state, as text and as Rich renderables.
* :mod:`lessons.kernel` — read-only helpers for checks.
* :mod:`lessons.progress` — progress per user and kit root, in the XDG state directory.
* :mod:`lessons.catalog` — the list of lessons (one line per lesson).
* :mod:`lessons.plain` — the plain-text runner.

Writing a lesson: see ``lessons/README.md``.
"""

from __future__ import annotations

from lessons.model import Challenge, Lesson, Question, Step, Verdict

__all__ = ["Challenge", "Lesson", "Question", "Step", "Verdict"]
