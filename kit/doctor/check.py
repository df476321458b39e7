"""The outcome of one doctor check: ``ok``, ``warn`` or ``fail``, with the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("ok", "warn", "fail")
MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}


@dataclass
class Check:
    """The outcome of one check.

    ``status`` is ``ok``, ``warn`` (an optional feature is missing) or ``fail`` (containers
    cannot run). ``fix`` is the command or step that fixes a non-ok outcome. ``data`` holds the
    facts behind the detail for programs (the TUI, tests, ``kit doctor --json``, and
    :mod:`kit.doctor.requirements`, which decides from them what each lesson can do here).
    """

    name: str
    status: str
    detail: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, not {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``kit doctor --json``)."""
        return asdict(self)

    def line(self) -> str:
        """``✓ overlayfs: works ...`` followed by ``fix: ...`` when not ok."""
        text = f"{MARKS[self.status]} {self.name}: {self.detail}"
        if self.status != "ok" and self.fix:
            text += f"\n    fix: {self.fix}"
        return text
