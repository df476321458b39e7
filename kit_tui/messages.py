"""Messages from the engine workers to the screen: small dataclasses, each with one job.

Workers run in threads and never touch widgets; they post these (``post_message`` is
thread-safe) and the screen updates the widgets on the UI thread. Engine events can come in
floods (a container start is over a hundred system calls), so they are not sent one message
each: workers append them to a buffer and post :class:`EventsArrived`, which *replaces* a
pending one of its kind. However many arrive, the log is redrawn once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from lessons.model import Verdict
from lessons.session import StepOutcome

if TYPE_CHECKING:  # the doctor is imported when a lesson is assessed, not at start
    from kit.doctor.requirements import Assessment


@dataclass
class EventsArrived(Message):
    """New engine events are waiting in the app's buffer (collapses with its own kind)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsArrived)


@dataclass
class StepFinished(Message):
    """A step ran (successfully or not)."""

    lesson_id: str
    index: int
    outcome: StepOutcome
    #: Seconds the engine took, step and check (for the benchmark).
    engine_seconds: float


@dataclass
class CheckFinished(Message):
    """A check read the kernel."""

    lesson_id: str
    index: int
    verdict: Verdict


@dataclass
class ResetFinished(Message):
    """A lesson was torn down."""

    lesson_id: str
    done: list[str]


@dataclass
class EngineFailed(Message):
    """Engine work failed in a way the lesson did not expect."""

    what: str


@dataclass
class DoctorFinished(Message):
    """``kit doctor``'s verdict on this machine."""

    can_run: bool
    explanation: str
    lines: list[str]


@dataclass
class ReadinessKnown(Message):
    """Whether each lesson can run on this machine (``lessons.readiness``), by lesson id."""

    assessments: dict[str, Assessment]


@dataclass
class LessonBlocked(Message):
    """A step was not run: its lesson cannot run on this machine."""

    lesson_id: str
    assessment: Assessment
