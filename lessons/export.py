"""Handouts: a lesson as Markdown or HTML, with the real trace and observations of a run on
this machine, so the lab sheet shows exactly what students will see.

    python tui.py --export 3 --format html -o lesson-3.html
    python tui.py --export mounts --format md --solutions       # the instructor's copy

The lesson really runs (in a fresh kit root of its own, then torn down): each step's prose,
its prediction question, the system calls it made, what the kernel showed, and the verdict of
its check. Challenges carry their task and hints; their reference solution is run (so later
steps find the kernel as they expect) but printed only with ``--solutions``.

The HTML is one self-contained file (inline CSS, no scripts, nothing fetched), printable. Its
blocks have fixed colours: the title band, system-call traces and observations can be told
apart at a glance on a projector (and by the tests, in a screenshot).
"""

from __future__ import annotations

import argparse
import html
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from markdown_it import MarkdownIt

from kit import __version__
from kit.doctor.readers import read
from kit.trace import Event
from lessons.catalog import find
from lessons.model import Lesson, Step
from lessons.plain import traced
from lessons.session import Session
from lessons.users import fresh_root

#: The colours of the HTML blocks (also what the screenshot test looks for).
TITLE_BACKGROUND = "#1d3557"
TRACE_BACKGROUND = "#0b3d0b"
OBSERVATION_BACKGROUND = "#2e1a47"


@dataclass
class StepRecord:
    """What one step did on this machine."""

    step: Step
    prose: str
    trace: list[str] = field(default_factory=list)
    observations: list[tuple[str, str]] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    before: str = ""
    passed: bool = False
    verdict: str = ""
    error: str = ""


@dataclass
class LessonRecord:
    """A lesson's run on this machine, ready to be written out."""

    lesson: Lesson
    machine: str
    when: str
    steps: list[StepRecord]

    @property
    def passed(self) -> int:
        return sum(record.passed for record in self.steps)


def _collector(lines: list[str]) -> Callable[[Event], None]:
    def collect(event: Event) -> None:
        if traced(event):  # what the plain runner prints
            lines.append(event.format())

    return collect


def machine() -> str:
    """``Debian GNU/Linux 12 (bookworm), Linux 6.1.0, x86_64``"""
    release = {}
    for line in (read("/etc/os-release") or "").splitlines():
        key, _, value = line.partition("=")
        release[key] = value.strip('"')
    name = release.get("PRETTY_NAME", "Linux")
    return f"{name}, Linux {platform.release()}, {platform.machine()}"


def record(lesson: Lesson, *, solve: bool = True) -> LessonRecord:
    """Run ``lesson`` on this machine (in the current kit root) and record every step."""
    steps: list[StepRecord] = []
    session = Session(lesson)
    session.close()
    try:
        for index, step in enumerate(lesson.steps):
            entry = StepRecord(step, lesson.prose(step))
            steps.append(entry)
            outcome = session.run_step(index, on_event=_collector(entry.trace))
            entry.remarks = list(outcome.remarks)
            entry.observations = [(o.title, o.text()) for o in outcome.observations]
            if outcome.error is not None:
                entry.error = str(outcome.error)
                continue
            if step.is_challenge:
                before = session.check(index)
                entry.before = before.detail
                if solve:
                    session.solve(index)
            verdict = session.check(index)
            entry.passed, entry.verdict = verdict.passed, verdict.detail
    finally:
        session.reset()
    return LessonRecord(lesson, machine(), time.strftime("%Y-%m-%d %H:%M %Z"), steps)


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def markdown(run: LessonRecord, *, solutions: bool = False) -> str:
    """The handout as Markdown."""
    lesson = run.lesson
    out = [
        f"# Lesson {lesson.label}",
        "",
        f"*Recorded on {run.machine}, {run.when}, with kit {__version__}: "
        f"{run.passed}/{len(run.steps)} checks passed.*",
        "",
        _body(lesson.intro_text()),
        "",
        "**You will learn**",
        "",
        *[f"* {goal}" for goal in lesson.goals],
    ]
    for number, entry in enumerate(run.steps, 1):
        step = entry.step
        out += ["", f"## Step {number}: {step.title}", "", _shift(entry.prose)]
        if step.question is not None:
            out += ["", f"**Predict:** {step.question.prompt}", ""]
            out += [f"{i}. {choice}" for i, choice in enumerate(step.question.choices, 1)]
        if step.is_challenge:
            out += ["", "**Hints**", ""]
            out += [f"{i}. {hint}" for i, hint in enumerate(step.hints, 1)]  # type: ignore[attr-defined]
        if entry.trace:
            out += ["", "**System calls**", "", _fence("\n".join(entry.trace))]
        for title, text in entry.observations:
            out += ["", f"**{title}**", "", _fence(text)]
        for remark in entry.remarks:
            out += ["", remark]
        if step.question is not None:
            q = step.question
            out += ["", f"**Answer:** {q.answer + 1}. {q.choices[q.answer]}. {q.explain}"]
        if step.is_challenge and solutions:
            out += ["", f"**Solution:** `{step.solution}`"]  # type: ignore[attr-defined]
        out += ["", _verdict_line(entry)]
    return "\n".join(out) + "\n"


def _body(text: str) -> str:
    """A lesson's intro without its own ``# Title`` (the handout has one)."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def _shift(text: str) -> str:
    """Step prose under the step's ``##`` heading: its headings go one level down."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]  # the step's own title: the handout's heading says it already
    return "\n".join("#" + line if line.startswith("#") else line for line in lines).strip()


def _verdict_line(entry: StepRecord) -> str:
    if entry.error:
        return f"✗ **The step failed here:** {entry.error}"
    return f"{'✓' if entry.passed else '✗'} **Check:** {entry.verdict}"


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

CSS = f"""
body {{ font-family: sans-serif; max-width: 60rem; margin: 0 auto; padding: 0 1rem 3rem;
       color: #1b1b1b; background: #ffffff; line-height: 1.45; }}
header.title {{ background: {TITLE_BACKGROUND}; color: #ffffff; padding: 1.2rem 1.5rem;
               margin: 0 -1rem 1rem; }}
header.title h1 {{ margin: 0; font-size: 2rem; }}
header.title p {{ margin: 0.4rem 0 0; color: #dbe4ff; }}
h2 {{ border-bottom: 2px solid #c8c8c8; padding-bottom: 0.2rem; margin-top: 2.2rem; }}
h3.block {{ font-size: 0.95rem; margin: 1rem 0 0.3rem; color: #444444; }}
pre {{ padding: 0.7rem 0.9rem; overflow-x: auto; font-size: 0.8rem; line-height: 1.3;
      white-space: pre-wrap; word-break: break-all; }}
pre.trace {{ background: {TRACE_BACKGROUND}; color: #b9f6b9; }}
pre.observation {{ background: {OBSERVATION_BACKGROUND}; color: #f0e6ff; }}
code {{ background: #eeeeee; padding: 0 0.2rem; }}
.question {{ border-left: 4px solid #e9a23b; padding: 0.2rem 1rem; background: #fff8ec; }}
.answer {{ color: #6b4a00; }}
.hints {{ border-left: 4px solid #7a7a7a; padding: 0.2rem 1rem; background: #f4f4f4; }}
.check.passed {{ color: #1b6e1b; font-weight: bold; }}
.check.failed {{ color: #a31515; font-weight: bold; }}
@media print {{ pre {{ white-space: pre-wrap; }} h2 {{ break-after: avoid; }} }}
"""


def _md(text: str) -> str:
    return MarkdownIt("commonmark").render(text)


def html_page(run: LessonRecord, *, solutions: bool = False) -> str:
    """The handout as one self-contained HTML page."""
    lesson = run.lesson
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Lesson {e(lesson.label)}</title>",
        f"<style>{CSS}</style></head><body>",
        '<header class="title">',
        f"<h1>Lesson {e(lesson.label)}</h1>",
        f"<p>Recorded on {e(run.machine)}, {e(run.when)}, with kit {e(__version__)}: "
        f"{run.passed}/{len(run.steps)} checks passed.</p>",
        "</header>",
        _md(_body(lesson.intro_text())),
        "<p><strong>You will learn</strong></p><ul>",
        *[f"<li>{e(goal)}</li>" for goal in lesson.goals],
        "</ul>",
    ]
    for number, entry in enumerate(run.steps, 1):
        step = entry.step
        parts.append(f'<section class="step"><h2>Step {number}: {e(step.title)}</h2>')
        parts.append(_md(_shift(entry.prose)))
        if step.question is not None:
            choices = "".join(f"<li>{e(c)}</li>" for c in step.question.choices)
            parts.append(
                f'<div class="question"><p><strong>Predict:</strong> {e(step.question.prompt)}'
                f"</p><ol>{choices}</ol></div>"
            )
        if step.is_challenge:
            hints = "".join(f"<li>{e(h)}</li>" for h in step.hints)  # type: ignore[attr-defined]
            parts.append(f'<div class="hints"><p><strong>Hints</strong></p><ol>{hints}</ol></div>')
        if entry.trace:
            parts.append('<h3 class="block">System calls</h3>')
            parts.append(f'<pre class="trace">{e(chr(10).join(entry.trace))}</pre>')
        for title, text in entry.observations:
            parts.append(f'<h3 class="block">{e(title)}</h3>')
            parts.append(f'<pre class="observation">{e(text)}</pre>')
        for remark in entry.remarks:
            parts.append(f"<p>{e(remark)}</p>")
        if step.question is not None:
            q = step.question
            parts.append(
                f'<p class="answer"><strong>Answer:</strong> {q.answer + 1}. '
                f"{e(q.choices[q.answer])}. {e(q.explain)}</p>"
            )
        if step.is_challenge and solutions:
            solution = e(step.solution)  # type: ignore[attr-defined]
            parts.append(f"<p><strong>Solution:</strong> <code>{solution}</code></p>")
        state = "failed" if entry.error or not entry.passed else "passed"
        line = e(_verdict_line(entry).replace("**", ""))
        parts.append(f'<p class="check {state}">{line}</p></section>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """``python tui.py --export LESSON --format html|md [-o FILE] [--solutions]``"""
    parser = argparse.ArgumentParser(
        prog="tui.py --export",
        description="Run a lesson on this machine and write it as a handout.",
    )
    parser.add_argument("lesson", help="lesson number or id")
    parser.add_argument("--format", choices=("html", "md"), default="md")
    parser.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    parser.add_argument(
        "--solutions", action="store_true", help="include the challenges' solutions"
    )
    args = parser.parse_args(argv)
    try:
        lesson = find(args.lesson)
    except KeyError as error:
        sys.stderr.write(f"tui.py --export: {error.args[0]}\n")
        return 2
    with fresh_root("export"):
        run = record(lesson)
    page = (html_page if args.format == "html" else markdown)(run, solutions=args.solutions)
    if args.output:
        args.output.write_text(page, encoding="utf-8")
        sys.stderr.write(f"wrote {args.output} ({run.passed}/{len(run.steps)} checks passed)\n")
    else:
        (out or sys.stdout).write(page)
    return 0 if run.passed == len(run.steps) else 1
