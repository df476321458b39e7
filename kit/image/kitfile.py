"""The Kitfile: a Dockerfile subset, parsed into instructions with their line numbers.

Supported: ``FROM`` (an image or ``scratch``), ``COPY``, ``ADD`` (a local tar is unpacked),
``RUN``, ``ENV``, ``WORKDIR``, ``USER``, ``CMD``, ``ENTRYPOINT``, ``LABEL``. Lines continue
with a trailing backslash; ``#`` starts a comment line. ``RUN``, ``CMD`` and ``ENTRYPOINT``
take the shell form (``RUN make install``, run by ``/bin/sh -c``) or the JSON form
(``CMD ["/bin/app", "--flag"]``, run as is). Errors name the file and line.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from kit.errors import KitError

KEYWORDS = ("FROM", "COPY", "ADD", "RUN", "ENV", "WORKDIR", "USER", "CMD", "ENTRYPOINT", "LABEL")
#: Instructions that add a layer; the rest only change the config.
LAYER_KEYWORDS = ("COPY", "ADD", "RUN")


class KitfileError(KitError):
    """A Kitfile mistake, at a file and line."""

    def __init__(self, path: str, line: int, problem: str, fix: str) -> None:
        super().__init__(f"{path}:{line}: {problem}", fix=fix, exit_code=2)
        self.path = path
        self.line = line


@dataclass
class Instruction:
    keyword: str
    text: str  # the arguments as written (continuations joined)
    line: int
    #: The JSON form's list, if that form was used.
    exec_form: list[str] | None = None
    #: Flags like ``--chown=1000:1000`` (COPY/ADD).
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """How the instruction reads in ``kit history`` (like Docker's ``created_by``)."""
        return f"{self.keyword} {self.text}".strip()

    def words(self) -> list[str]:
        return self.exec_form if self.exec_form is not None else shlex.split(self.text)


def parse(text: str, path: str = "Kitfile") -> list[Instruction]:
    """Parse a Kitfile; the first instruction must be FROM."""
    out: list[Instruction] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.rstrip().endswith("\\"):
            line = line.rstrip()[:-1] + " "
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                i += 1  # comment lines inside a continuation are skipped, as Docker does
            if i >= len(lines):
                raise KitfileError(
                    path,
                    start,
                    "the last line ends with '\\' but nothing follows",
                    "remove the trailing backslash",
                )
            line += lines[i]
            i += 1
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword not in KEYWORDS:
            raise KitfileError(
                path,
                start,
                f"unknown instruction {keyword!r}",
                f"use one of {', '.join(KEYWORDS)}",
            )
        if not rest:
            raise KitfileError(path, start, f"{keyword} needs arguments", _EXAMPLES[keyword])
        out.append(_instruction(path, start, keyword, rest))
    if not out:
        raise KitfileError(
            path, 1, "the Kitfile is empty", "start it with FROM IMAGE or FROM scratch"
        )
    if out[0].keyword != "FROM":
        raise KitfileError(
            path,
            out[0].line,
            f"the first instruction is {out[0].keyword}, not FROM",
            "start the Kitfile with FROM IMAGE (or FROM scratch)",
        )
    for extra in out[1:]:
        if extra.keyword == "FROM":
            raise KitfileError(
                path,
                extra.line,
                "a second FROM (multi-stage builds are not supported)",
                "keep one FROM at the top",
            )
    return out


_EXAMPLES = {
    "FROM": "e.g. FROM busybox:latest, or FROM scratch",
    "COPY": "e.g. COPY app.sh /usr/local/bin/",
    "ADD": "e.g. ADD rootfs.tar /",
    "RUN": "e.g. RUN echo hello > /greeting",
    "ENV": "e.g. ENV KEY=value",
    "WORKDIR": "e.g. WORKDIR /app",
    "USER": "e.g. USER 1000:1000",
    "CMD": 'e.g. CMD ["/bin/sh"]',
    "ENTRYPOINT": 'e.g. ENTRYPOINT ["/bin/app"]',
    "LABEL": "e.g. LABEL version=1",
}


def _instruction(path: str, line: int, keyword: str, rest: str) -> Instruction:
    flags: dict[str, str] = {}
    if keyword in ("COPY", "ADD"):
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            if name != "chown" or not value:
                raise KitfileError(
                    path, line, f"unknown {keyword} flag {flag!r}", "kit supports --chown=UID:GID"
                )
            flags[name] = value
            rest = rest.strip()
    exec_form = None
    if rest.startswith("[") and keyword in ("RUN", "CMD", "ENTRYPOINT", "COPY", "ADD"):
        try:
            value = json.loads(rest)
        except json.JSONDecodeError as exc:
            raise KitfileError(
                path,
                line,
                f"{keyword}'s JSON form is not valid JSON ({exc.msg})",
                'write it as ["program", "arg"] with double quotes',
            ) from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise KitfileError(
                path,
                line,
                f"{keyword}'s JSON form must be a list of strings",
                'write it as ["program", "arg"]',
            )
        exec_form = value
    inst = Instruction(keyword, rest, line, exec_form, flags)
    try:
        words = inst.words()
    except ValueError as exc:
        raise KitfileError(
            path, line, f"cannot split {keyword}'s arguments: {exc}", "close the quotes"
        ) from None
    if keyword in ("COPY", "ADD") and len(words) < 2:
        raise KitfileError(
            path, line, f"{keyword} needs a source and a destination", _EXAMPLES[keyword]
        )
    if keyword in ("FROM", "WORKDIR", "USER") and len(words) != 1:
        raise KitfileError(path, line, f"{keyword} takes exactly one argument", _EXAMPLES[keyword])
    if keyword in ("ENV", "LABEL"):
        pairs(inst, path)
    return inst


def pairs(inst: Instruction, path: str = "Kitfile") -> list[tuple[str, str]]:
    """ENV/LABEL arguments: ``K=V K2="v 2"`` or the old ``K value with spaces`` form."""
    words = shlex.split(inst.text)
    if words and "=" not in words[0]:
        if inst.keyword == "ENV" and len(words) >= 2:
            return [(words[0], inst.text.split(None, 1)[1].strip())]
        raise KitfileError(
            path, inst.line, f"{inst.keyword} wants KEY=VALUE", _EXAMPLES[inst.keyword]
        )
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise KitfileError(
                path,
                inst.line,
                f"{inst.keyword} argument {word!r} is not KEY=VALUE",
                _EXAMPLES[inst.keyword],
            )
        out.append((key, value))
    return out
