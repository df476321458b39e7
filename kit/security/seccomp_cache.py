"""Compiled seccomp filters kept on disk, so that a container start does not compile again.

Compiling a profile into BPF (:mod:`kit.security.seccomp_filter`) is the slowest single step
of a container's setup: a few milliseconds of Python, plus importing the compiler and the
system call tables. For the same input it gives the same program every time, and nearly every
container runs the same profile (kit's default). So kit keeps the programs it compiled in
``<data root>/cache/seccomp/``, the way Python keeps compiled modules in ``__pycache__``.

A program is reused only for exactly what it was compiled from, and the cached file records
all of it:

* the profile itself (its canonical JSON text),
* the machine (``uname -m``: the system call numbers and the architecture checks),
* the compiler: size and modification time of its source files, which is how Python decides
  that a ``.pyc`` file is stale. A changed compiler or table never reuses an old program.

Loading compares that record in full with the current one; the file name (a CRC-32 of the
record) only finds the file, so two profiles with the same CRC cannot get each other's
program. Writes are atomic (a temporary file renamed into place), so a reader sees a whole
file or none, and two containers starting at once may both compile and both write. Anything
unexpected (no such file, a torn or foreign file, a read-only disk) just means "compile": the
cache can make a start faster, never different. Delete the directory at any time.

The cache is off until a program turns it on with :func:`enable`: kit's command line does
(for its data root), so that ``kit run``, ``kit create`` and their monitors reuse programs,
while a program driving containers through :mod:`kit.runtime.launcher` alone (a lesson, a
test) compiles every time and writes nothing to disk.
"""

from __future__ import annotations

import binascii
import contextlib
import json
import os
from typing import Any

from kit.paths import data_root

#: The files whose code decides what a profile compiles to (beside this module).
COMPILER_SOURCES = (
    "seccomp_cache.py",
    "seccomp_profile.py",
    "seccomp_filter.py",
    "bpf.py",
    "syscall_tables.py",
)


#: Where compiled programs are kept; None: compile every time (see the module docstring).
_settings: dict[str, str | None] = {"directory": None}


def default_dir() -> str:
    """``<data root>/cache/seccomp``."""
    return os.path.join(data_root(), "cache", "seccomp")


def enable(directory: str | None = None) -> None:
    """Keep compiled programs in ``directory`` (default: :func:`default_dir`) from now on, in
    this process and in the processes it forks (the init is one)."""
    _settings["directory"] = directory or default_dir()


def compiled_filter(profile: dict[str, Any]) -> tuple[bytes, int]:
    """The BPF program of an OCI seccomp profile and its seccomp(2) flags: from the cache
    when it is on and holds this exact compilation, else compiled now (and kept)."""
    directory = _settings["directory"]
    if directory is None:
        return _compile(profile)
    source = _source(profile)
    path = os.path.join(directory, f"{binascii.crc32(source.encode()):08x}.json")
    compiled = _load(path, source)
    if compiled is None:
        compiled = _compile(profile)
        _store(path, source, compiled)
    return compiled


def _compile(profile: dict[str, Any]) -> tuple[bytes, int]:
    # Imported only here: a start served from the cache never needs the compiler.
    from kit.security import bpf
    from kit.security.seccomp_filter import compile_profile
    from kit.security.seccomp_profile import parse

    parsed = parse(profile)
    return bpf.encode(compile_profile(parsed)), parsed.flag_bits()


def _source(profile: dict[str, Any]) -> str:
    """Everything the program depends on, as one canonical text."""
    here = os.path.dirname(os.path.abspath(__file__))
    compiler = []
    for name in COMPILER_SOURCES:
        st = os.stat(os.path.join(here, name))
        compiler.append([name, st.st_size, st.st_mtime_ns])
    record = {"profile": profile, "machine": os.uname().machine, "compiler": compiler}
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _load(path: str, source: str) -> tuple[bytes, int] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data["source"] != source:
            return None  # another compilation with the same CRC, or a stale one
        program = bytes.fromhex(data["program"])
        flags = int(data["flags"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not program or len(program) % 8:
        return None  # not whole 8-byte instructions: never hand that to the kernel
    return program, flags


def _store(path: str, source: str, compiled: tuple[bytes, int]) -> None:
    program, flags = compiled
    text = json.dumps({"source": source, "flags": flags, "program": program.hex()})
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
    except OSError:
        # Not writable here (a read-only kit root, a full disk): this start compiled anyway.
        with contextlib.suppress(OSError):
            os.unlink(temporary)
