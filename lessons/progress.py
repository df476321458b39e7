"""Progress: which steps a learner has passed, kept across restarts.

Stored as JSON in the XDG state directory (``$XDG_STATE_HOME``, default ``~/.local/state``),
one file per kit root and user::

    ~/.local/state/kit/progress-<user>-<root tag>.json

so two students on one machine, or a test run beside a real course, never share progress.
Writes are atomic (temporary file + rename). Progress records what was *passed*; the kernel
state behind it is rebuilt by replaying steps when a learner comes back.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kit.paths import data_root, root_tag
from lessons.users import sudo_learner
from lessons.workspace import user_name

VERSION = 1


def state_dir() -> Path:
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "kit"
    if sudo_learner():
        # Root mode: not in the student's home (HOME may still point there under sudo, and a
        # root-owned ~/.local/state/kit would lock the student out of rootless mode), but in
        # the kit root, which lessons.users gives each root-mode learner.
        return data_root() / "state"
    return Path.home() / ".local" / "state" / "kit"


def progress_path() -> Path:
    return state_dir() / f"progress-{user_name()}-{root_tag()}.json"


@dataclass
class LessonProgress:
    """One lesson's progress."""

    #: Steps whose check passed.
    passed: list[str] = field(default_factory=list)
    #: Steps the learner skipped explicitly.
    skipped: list[str] = field(default_factory=list)
    #: Index of the step the learner is on.
    position: int = 0
    #: Step id -> the choice predicted.
    predictions: dict[str, int] = field(default_factory=dict)
    #: Step id -> how many hints were shown.
    hints: dict[str, int] = field(default_factory=dict)
    #: Challenges whose solution was revealed.
    solutions_seen: list[str] = field(default_factory=list)
    #: Step id -> what the kernel showed when the check passed, and when (for reports: the
    #: kernel state itself may be gone by the time an instructor reads them).
    evidence: dict[str, str] = field(default_factory=dict)

    def done(self, step_id: str) -> bool:
        return step_id in self.passed or step_id in self.skipped

    def mark_passed(self, step_id: str, evidence: str = "") -> None:
        if evidence:
            self.evidence[step_id] = f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {evidence}"
        if step_id not in self.passed:
            self.passed.append(step_id)
        if step_id in self.skipped:
            self.skipped.remove(step_id)

    def mark_skipped(self, step_id: str) -> None:
        if step_id not in self.passed and step_id not in self.skipped:
            self.skipped.append(step_id)


class Progress:
    """All of a learner's progress (load, change, :meth:`save`)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or progress_path()
        self.lessons: dict[str, LessonProgress] = {}
        self.current: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> Progress:
        progress = cls(path)
        try:
            data = json.loads(progress.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return progress  # no progress yet, or a damaged file: start fresh
        if data.get("version") != VERSION:
            return progress
        progress.current = data.get("current")
        for lesson_id, raw in data.get("lessons", {}).items():
            known = {k: v for k, v in raw.items() if k in LessonProgress.__dataclass_fields__}
            progress.lessons[lesson_id] = LessonProgress(**known)
        return progress

    def lesson(self, lesson_id: str) -> LessonProgress:
        return self.lessons.setdefault(lesson_id, LessonProgress())

    def reset(self, lesson_id: str) -> None:
        self.lessons.pop(lesson_id, None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "current": self.current,
            "lessons": {k: asdict(v) for k, v in self.lessons.items()},
        }

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(prefix=".progress-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, indent=1)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
