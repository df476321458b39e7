"""HTML handouts, opened in a real browser: Debian's Chromium, headless, takes a screenshot of
``tui.py --export 1 --format html`` and the test finds the rendered blocks by their colours.

The export gives each kind of block a fixed colour (the title band, the system-call traces,
the observations: lessons/export.py); a block that did not render (broken HTML or CSS, an
empty trace) leaves its colour out of the picture. The PNG is read by a forty-line decoder
(tests/png_pixels.py) rather than Pillow: finding colours needs no imaging library.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from png_pixels import read_rgb, rows_with

from lessons import export
from lessons.catalog import find

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("kit_root")


def _rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium package is part of the test set-up (./run-tests)"
    return found


def _screenshot(page: Path, png: Path, profile: Path) -> None:
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1000,1600",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert png.is_file(), "Chromium wrote no screenshot"


@pytest.fixture(scope="module")
def handout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lesson 1 exported as HTML from a real run on this machine."""
    out = tmp_path_factory.mktemp("handout") / "lesson-1.html"
    env = {**os.environ, "KIT_ROOT": str(out.parent / "kit-root")}
    done = subprocess.run(
        [sys.executable, "tui.py", "--export", "1", "--format", "html", "-o", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_html_is_one_self_contained_page(handout: Path) -> None:
    page = handout.read_text()
    lesson = find(1)
    assert page.startswith("<!DOCTYPE html>")
    assert f"<h1>Lesson {lesson.label}</h1>" in page
    assert page.count('<section class="step">') == len(lesson.steps)
    first = page.split('<section class="step">')[1]
    assert '<pre class="trace">' in first  # the step that starts the container
    assert "unshare(CLONE_NEWNS|" in page  # the real trace of this run
    assert not re.search(r"<(script|link|img)\b", page)  # nothing to fetch, nothing to run
    assert "<script" not in page
    # Prose went through Markdown: emphasis and code became tags, not asterisks.
    assert "<strong>namespaces</strong>" in page and "<code>" in page


def test_chromium_renders_the_title_and_the_trace(handout: Path, tmp_path: Path) -> None:
    png = tmp_path / "page.png"
    _screenshot(handout, png, tmp_path / "profile")
    width, height, rows = read_rgb(png)
    assert (width, height) == (1000, 1600)
    title = rows_with(rows, _rgb(export.TITLE_BACKGROUND), at_least=300)
    trace = rows_with(rows, _rgb(export.TRACE_BACKGROUND), at_least=300)
    observation = rows_with(rows, _rgb(export.OBSERVATION_BACKGROUND), at_least=300)
    assert title, "no title band in the screenshot"
    assert title[0] < 40 and len(title) > 60  # a band at the very top, as tall as a heading
    assert trace, "no system-call trace block in the screenshot"
    assert trace[0] > title[-1]  # below the title
    assert len(trace) > 40  # a block of many lines, not a stray pixel row
    # The band and the blocks are distinct colours, so the counts do not mix them up.
    assert not set(title) & set(trace)
    assert observation == [] or observation[0] > title[-1]
    # Prose sits on white between the blocks.
    assert rows_with(rows[title[-1] : trace[0]], (255, 255, 255), at_least=900)


def test_the_png_reader_against_a_known_image(tmp_path: Path) -> None:
    """The decoder itself, on a PNG Chromium makes from a page of known colours."""
    page = tmp_path / "colours.html"
    page.write_text(
        "<html><body style='margin:0;background:#ffffff'>"
        "<div style='height:100px;background:#ff0000'></div>"
        "<div style='height:50px;background:#00ff00'></div>"
        "<div style='height:25px;background:#123456'></div></body></html>"
    )
    png = tmp_path / "colours.png"
    _screenshot(page, png, tmp_path / "profile")
    _, _, rows = read_rgb(png)
    assert rows_with(rows, (255, 0, 0), at_least=900) == list(range(100))
    assert rows_with(rows, (0, 255, 0), at_least=900) == list(range(100, 150))
    assert rows_with(rows, (0x12, 0x34, 0x56), at_least=900) == list(range(150, 175))
