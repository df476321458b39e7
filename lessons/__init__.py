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
* :mod:`lessons.live` — the containers and experiment processes a lesson keeps alive.
* :mod:`lessons.shell` — the command behind "open a shell here" (and a challenge's solution).
* :mod:`lessons.workspace` — a lesson's scratch directory and its real teardown.
* :mod:`lessons.imaging` — the small image store and image containers of lessons 6, 7 and 11.
* :mod:`lessons.progress` — progress per user and kit root, in the XDG state directory.
* :mod:`lessons.users` — who the learner is; a kit root of their own under sudo.
* :mod:`lessons.readiness` — whether a lesson can run on this machine (the doctor's answer).
* :mod:`lessons.catalog` — the list of lessons (one line per lesson).
* :mod:`lessons.plain` — the plain-text runner.
* :mod:`lessons.report`, :mod:`lessons.instructor`, :mod:`lessons.export` — for classes: a
  learner's progress report, instructor mode and ``--check-all``, handouts.

Writing a lesson: see ``lessons/README.md``.
"""

from __future__ import annotations

from lessons.model import Challenge, Lesson, Question, Step, Verdict

__all__ = ["Challenge", "Lesson", "Question", "Step", "Verdict"]
