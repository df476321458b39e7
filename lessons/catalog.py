"""The catalog: every lesson, in teaching order. Adding a lesson = one line here.

Each entry names a lesson module (a package under ``lessons/``) that defines ``LESSON``, a
:class:`~lessons.model.Lesson`. Modules are imported on first use, so listing the catalog is
cheap.
"""

from __future__ import annotations

import importlib

from lessons.model import Lesson

#: One line per lesson. Keep the order: it is the order of the course.
LESSON_MODULES: list[str] = [
    "lessons.l01_container_view",
    "lessons.l02_rootfs",
    "lessons.l03_mounts",
    "lessons.l04_pivot_root",
    "lessons.l05_overlay",
    "lessons.l06_images",
    "lessons.l07_writable_layer",
    "lessons.l08_mount_flags",
    "lessons.l09_privilege",
    "lessons.l10_isolation",
    "lessons.l11_exploring",
    "lessons.l12_runtime_stack",
]

_loaded: list[Lesson] | None = None


def all_lessons() -> list[Lesson]:
    """Every lesson of the catalog, in order."""
    global _loaded
    if _loaded is None:
        _loaded = [importlib.import_module(name).LESSON for name in LESSON_MODULES]
    return _loaded


def find(key: str | int) -> Lesson:
    """A lesson by number (``2``, ``"2"``) or id (``"rootfs"``)."""
    text = str(key).strip()
    for lesson in all_lessons():
        if text in (lesson.id, str(lesson.number)):
            return lesson
    known = ", ".join(f"{lesson.number} ({lesson.id})" for lesson in all_lessons())
    raise KeyError(f"no lesson {text!r}; choose one of: {known}")
