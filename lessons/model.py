"""The lesson model: what a lesson *is*, separate from how it runs or how it is shown.

A :class:`Lesson` is a title, what you will learn, and ordered steps. A :class:`Step` is

* prose: a Markdown file beside the lesson module (``<step id>.md``), in our own words;
* ``run``: the engine action it performs (a function of a :class:`~lessons.context.StepContext`),
  which starts containers or experiments and records observations of real kernel state;
* ``check``: a function that reads kernel state (``/proc/PID/...``, the mount table, files)
  and returns a :class:`Verdict`. It must fail on a pristine machine and pass after the step
  ran; ``tests/test_lessons_validate.py`` proves that for every step of every lesson;
* optionally a :class:`Question` to predict before running.

A :class:`Challenge` is a step the *learner* performs in a container shell. Its ``run``
prepares the container; its ``check`` verifies the resulting kernel state (never keystrokes);
``hints`` are graduated; ``solution`` is shell commands shown only after confirmation (and run
by the validator and by the plain runner's ``--solve``).

Nothing here imports Textual or touches the kernel.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lessons.context import StepContext


@dataclass(frozen=True)
class Verdict:
    """The answer of a check: passed or not, and what the kernel showed."""

    passed: bool
    detail: str

    @classmethod
    def ok(cls, detail: str) -> Verdict:
        return cls(True, detail)

    @classmethod
    def no(cls, detail: str) -> Verdict:
        return cls(False, detail)


@dataclass(frozen=True)
class Question:
    """Predict-then-run: asked before the step runs, answered by what the kernel does."""

    prompt: str
    choices: tuple[str, ...]
    #: Index of the right choice.
    answer: int
    #: Why, shown after the step ran.
    explain: str

    def is_right(self, choice: int) -> bool:
        return choice == self.answer


Action = Callable[["StepContext"], None]
Check = Callable[["StepContext"], Verdict]


@dataclass(frozen=True)
class Step:
    """One thing the lesson does with the engine, and the kernel state that proves it."""

    id: str
    title: str
    run: Action
    check: Check
    question: Question | None = None
    #: The prose file beside the lesson module; default ``<id>.md``.
    prose: str | None = None

    @property
    def is_challenge(self) -> bool:
        return False

    @property
    def prose_file(self) -> str:
        return self.prose or f"{self.id}.md"


@dataclass(frozen=True)
class Challenge(Step):
    """A step the learner does by hand in a container shell; the check reads the result."""

    #: Graduated: each one gives away a little more.
    hints: tuple[str, ...] = ()
    #: Shell commands that solve it, run inside the challenge's container.
    solution: str = ""

    @property
    def is_challenge(self) -> bool:
        return True


@dataclass(frozen=True)
class Lesson:
    """A lesson: title, goals, ordered steps, and prose files in its package."""

    id: str
    number: int
    title: str
    #: What you will learn, one line each.
    goals: tuple[str, ...]
    steps: tuple[Step, ...]
    #: The package holding the prose (``__name__`` of the lesson module).
    package: str
    intro: str = "intro.md"
    summary: str = ""
    #: What the lesson needs from the machine, as kit.doctor.requirements keys ("root",
    #: "overlay", "cgroup:memory", "tool:umoci" ...): the tutorial asks the doctor before the
    #: lesson runs and shows what blocks it and the fix. Lessons start their containers
    #: without a user namespace, so they need root until they say otherwise.
    requires: tuple[str, ...] = ("root",)
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        ids = [step.id for step in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"lesson {self.id}: step ids repeat: {ids}")

    def read(self, name: str) -> str:
        """A prose file of this lesson (cached)."""
        if name not in self._cache:
            resource = importlib.resources.files(self.package) / name
            self._cache[name] = resource.read_text(encoding="utf-8")
        return self._cache[name]

    def intro_text(self) -> str:
        return self.read(self.intro)

    def prose(self, step: Step) -> str:
        return self.read(step.prose_file)

    def index(self, step_id: str) -> int:
        for i, step in enumerate(self.steps):
            if step.id == step_id:
                return i
        raise KeyError(f"lesson {self.id} has no step {step_id!r}")

    @property
    def label(self) -> str:
        return f"{self.number}. {self.title}"
