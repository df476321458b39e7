"""The widgets of the main screen. They hold no lesson logic: the screen sets their content
(attributes down) and they report what the learner picked (messages up)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markdown import Markdown as RichMarkdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, OptionList, RichLog, Static, TabbedContent, TabPane

from kit import render
from kit.trace import Event
from lessons.observe import Observation, group

#: The visual panes, in tab order: id -> tab title and what it shows before a step ran.
PANES: dict[str, tuple[str, str]] = {
    "mounts": ("Mounts", "Mount tables and what each stage changed appear here."),
    "tree": ("Tree", "Directory trees (a root filesystem, /dev) appear here."),
    "namespaces": ("Namespaces", "Namespace ids, host vs container, appear here."),
    "output": ("Output", "What programs printed, and facts read from the kernel, appear here."),
}


class LessonList(OptionList):
    """The lessons, with progress marks."""


class StepList(OptionList):
    """The steps of the current lesson."""


class Prose(VerticalScroll):
    """The step's text (Markdown from the lesson's .md files).

    Rendered by Rich into one widget: Textual's Markdown widget makes a widget per block,
    which costs more to lay out than the learner would ever notice being gained.
    """

    def compose(self) -> ComposeResult:
        yield Static(id="prose-text")

    def show(self, markdown: str) -> None:
        self.query_one("#prose-text", Static).update(RichMarkdown(markdown, code_theme="ansi_dark"))
        self.scroll_home(animate=False)


class Visuals(Vertical):
    """Mount-table diffs, trees, namespace comparisons and output: observations of the kernel."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._filled: dict[str, bool] = {}

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            for pane_id, (title, empty) in PANES.items():
                with TabPane(title, id=f"tab-{pane_id}"), VerticalScroll():
                    yield Static(Text(empty, style="dim"), id=f"pane-{pane_id}", classes="pane")

    def show(self, observations: list[Observation]) -> None:
        """Put each observation in its pane; the first observation's pane comes to the front."""
        by_pane: dict[str, list[Observation]] = {pane: [] for pane in PANES}
        for observation in observations:
            by_pane.setdefault(observation.pane, []).append(observation)
        for pane_id, (_, empty) in PANES.items():
            found = by_pane[pane_id]
            if not found and not self._filled.get(pane_id):
                continue  # still showing its placeholder
            content: RenderableType = group(found) if found else Text(empty, style="dim")
            self.query_one(f"#pane-{pane_id}", Static).update(content)
            self._filled[pane_id] = bool(found)
        if observations:  # the pane of the step's first observation comes to the front
            self.query_one(TabbedContent).active = f"tab-{observations[0].pane}"


class SyscallLog(RichLog):
    """The live log of the engine's events: system calls, stages, errors."""

    def add(self, events: list[Event]) -> None:
        lines = [render.event_line(event) for event in events if event.kind != "pause"]
        if lines:
            # One write per batch: the log renders once, however many calls arrived.
            # As wide as the longest line: the log scrolls sideways rather than wrap calls.
            width = max(self.scrollable_content_region.width, *(line.cell_len for line in lines))
            self.write(Group(*lines), width=width)


class Controls(Horizontal):
    """The step controls; each button runs the screen action its key runs too."""

    BUTTONS = (
        ("run", "Run ⟨r⟩", "screen.run", "primary"),
        ("check", "Check ⟨c⟩", "screen.check", "default"),
        ("hint", "Hint ⟨h⟩", "screen.hint", "default"),
        ("solution", "Solution ⟨v⟩", "screen.solution", "default"),
        ("shell", "Shell ⟨s⟩", "screen.shell", "default"),
        ("skip", "Skip ⟨k⟩", "screen.skip", "default"),
        ("next", "Next ⟨n⟩", "screen.next", "success"),
        ("reset", "Reset ⟨ctrl+r⟩", "screen.reset", "error"),
    )

    def compose(self) -> ComposeResult:
        for button_id, label, action, variant in self.BUTTONS:
            yield Button(label, id=button_id, action=action, variant=variant, compact=True)  # type: ignore[arg-type]
