"""The lesson model without the engine: progress files, observations as text, layering.

Golden plain text of observations (the TUI shows the same data as Rich renderables), the
progress store (per user and kit root, atomic, surviving a restart), and the layering rule:
``lessons`` never imports Textual, ``kit`` never imports ``lessons``, ``tui`` or Textual.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kit import mounts
from lessons import observe
from lessons.progress import Progress, progress_path

REPO = Path(__file__).resolve().parent.parent


# --- progress ------------------------------------------------------------------------------------


def test_progress_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("KIT_ROOT", str(tmp_path / "root"))
    progress = Progress.load()
    lesson = progress.lesson("mounts")
    lesson.mark_passed("shared")
    lesson.mark_skipped("private")
    lesson.position = 2
    lesson.predictions["copy"] = 2
    progress.current = "mounts"
    progress.save()
    assert progress.path.parent == tmp_path / "state" / "kit"
    again = Progress.load()
    assert again.current == "mounts"
    restored = again.lesson("mounts")
    assert restored.passed == ["shared"] and restored.skipped == ["private"]
    assert restored.position == 2 and restored.predictions == {"copy": 2}
    assert restored.done("shared") and restored.done("private") and not restored.done("copy")
    # Passing a skipped step turns it into a passed one.
    restored.mark_passed("private")
    assert restored.skipped == [] and restored.passed == ["shared", "private"]


def test_progress_is_per_user_and_per_kit_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("KIT_ROOT", str(tmp_path / "a"))
    monkeypatch.setenv("SUDO_USER", "alice")
    alice_a = progress_path()
    monkeypatch.setenv("SUDO_USER", "bob")
    bob_a = progress_path()
    monkeypatch.setenv("KIT_ROOT", str(tmp_path / "b"))
    bob_b = progress_path()
    assert len({alice_a, bob_a, bob_b}) == 3
    assert "alice" in alice_a.name and "bob" in bob_a.name


def test_a_damaged_progress_file_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "progress.json"
    path.write_text("{ not json")
    assert Progress.load(path).lessons == {}
    path.write_text(json.dumps({"version": 999, "lessons": {"x": {}}}))
    assert Progress.load(path).lessons == {}


def test_progress_writes_atomically(tmp_path: Path) -> None:
    path = tmp_path / "p" / "progress.json"
    progress = Progress(path)
    progress.lesson("rootfs").mark_passed("copy-shell")
    progress.save()
    assert [p.name for p in path.parent.iterdir()] == ["progress.json"]  # no temp files left
    assert json.loads(path.read_text())["lessons"]["rootfs"]["passed"] == ["copy-shell"]


# --- observations as text (golden) ---------------------------------------------------------------


def test_tree_text_is_a_stable_drawing(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "sh").write_bytes(b"x" * 10)
    (root / "etc").mkdir()
    (root / "lib64").symlink_to("usr/lib64")
    os.mkfifo(root / "pipe")
    tree = observe.Tree.of("t", root, depth=2, name="r/")
    assert tree.text() == (
        "r/\n├── bin/\n│   └── sh  10 bytes\n├── etc/\n├── lib64  -> usr/lib64\n└── pipe"
    )
    assert tree.pane == "tree"


def test_tree_shows_device_numbers_and_limits(tmp_path: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for i in range(5):
        (many / f"f{i}").touch()
    node = observe.snapshot(many, depth=1, limit=3)
    assert [c.name for c in node.children] == ["f0", "f1", "f2", "… 2 more"]
    null = observe.snapshot("/dev/null", depth=0)
    assert (null.kind, null.detail) == ("char", "char 1,3")


def test_facts_namespaces_and_mount_change_text() -> None:
    facts = observe.Facts("f", [("host", "vm"), ("container", "lesson-1")])
    assert facts.text() == "host       vm\ncontainer  lesson-1"
    spaces = observe.Namespaces("n", {"mnt": 2, "uts": 5}, {"mnt": 1, "uts": 5})
    assert spaces.text().splitlines() == [
        "mnt     host 1  here 2  (new)",
        "uts     host 5  here 5  (shared with host)",
    ]
    line = "36 35 98:0 / /mnt rw,noatime shared:1 - tmpfs tmpfs rw"
    change = observe.MountChange("m", mounts.diff([], [mounts.parse_line(line)]))
    assert change.text() == "+ /mnt  tmpfs  tmpfs  rw,noatime  shared"
    assert observe.MountChange("m", mounts.diff([], [])).text() == "(no change to the mount table)"
    assert observe.as_text(facts).startswith("── f ──\n")


# --- layering ------------------------------------------------------------------------------------


def _imports(package: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


def test_lessons_never_import_textual_or_the_tui() -> None:
    for path, names in _imports(REPO / "lessons").items():
        assert not names & {"textual", "tui", "kit_tui"}, (
            f"{path} imports {names & {'textual', 'tui', 'kit_tui'}}"
        )


def test_kit_never_imports_lessons_tui_or_textual() -> None:
    for path, names in _imports(REPO / "kit").items():
        bad = names & {"textual", "tui", "kit_tui", "lessons"}
        assert not bad, f"{path} imports {bad}"


def test_importing_every_lesson_loads_no_textual() -> None:
    code = (
        "import sys\n"
        "from lessons.catalog import all_lessons\n"
        "import lessons.plain, lessons.session\n"
        "all_lessons()\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
