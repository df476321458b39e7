"""The command palette (ctrl+p): jump to any lesson by typing part of its title."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from kit_tui.viewmodel import BLOCKED, blocked
from lessons.catalog import all_lessons


class LessonCommands(Provider):
    """One command per lesson: "Lesson 3: Mount namespaces and the kernel filesystems"."""

    def _commands(self) -> list[tuple[str, str, str]]:
        known = getattr(self.app, "assessments", {})
        commands = []
        for lesson in all_lessons():
            help_text = "; ".join(lesson.goals)
            if blocked(known.get(lesson.id)):
                help_text = (
                    f"{BLOCKED} cannot run on this machine (open it to see why). {help_text}"
                )
            commands.append((f"Lesson {lesson.number}: {lesson.title}", lesson.id, help_text))
        return commands

    async def discover(self) -> Hits:
        for text, lesson_id, help_text in self._commands():
            yield DiscoveryHit(text, partial(self._open, lesson_id), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, lesson_id, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(text), partial(self._open, lesson_id), help=help_text
                )

    def _open(self, lesson_id: str) -> None:
        self.app.open_lesson(lesson_id)  # type: ignore[attr-defined]
