"""Stage ``exec``: replace the init with the container's program.

Three things happen last. The working directory is entered. Every file descriptor above 2 is
marked close-on-exec (close_range with CLOSE_RANGE_CLOEXEC), so nothing kit had open (its
pipes to the caller, a host directory) leaks into the container: runc's CVE-2024-21626 was a
leaked host directory fd that let a container escape. Then execve(2) replaces the process.

If execve says ENOENT although the file exists, the missing file is the program's *loader*
(the ELF interpreter named in its header, e.g. /lib64/ld-linux-x86-64.so.2) or the
interpreter of a ``#!`` script: kit says which.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import stat

from kit.errors import KitError
from kit.linux.flags import CLOSE_RANGE_CLOEXEC
from kit.linux.process import chdir, close_range, execve
from kit.runtime import gate
from kit.runtime.context import InitContext
from kit.spec import DEFAULT_PATH
from kit.trace import Event, tracer

#: Signals Python changes from their defaults; a program exec'd with SIGPIPE ignored would
#: not die on a closed pipe, so they are put back before execve.
_RESET_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGXFSZ,
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGCHLD,
)


def find_executable(name: str, env: dict[str, str], cwd: str) -> str | None:
    """Look ``name`` up like execvp(3): a path if it has a slash, else each $PATH entry."""
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(cwd, name)
        return path if os.path.exists(path) else None
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            info = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o111:
            return candidate
    return None


def explain_missing_loader(path: str) -> KitError:
    """execve said ENOENT for a file that exists: name what is really missing."""
    from kit import elf

    interpreter = None
    try:
        if elf.is_elf(path):
            interpreter = elf.interpreter(path)
            kind = "its ELF interpreter (the dynamic loader)"
        else:
            with open(path, "rb") as f:
                first = f.readline(256)
            if first.startswith(b"#!"):
                interpreter = first[2:].strip().split()[0].decode(errors="replace")
                kind = "the interpreter on its #! line"
    except OSError:
        pass
    if interpreter:
        return KitError(
            f"cannot run {path}",
            errno=errno.ENOENT,
            cause=f"{path} exists, but {kind} {interpreter} is missing from the root filesystem",
            fix=f"copy {interpreter} (and the libraries it loads) into the root filesystem; "
            "`kit rootfs build` does this for you",
            exit_code=127,
        )
    return KitError(f"cannot run {path}", errno=errno.ENOENT, exit_code=127)


def run(ctx: InitContext) -> None:
    process = ctx.spec.process
    env = process.env_dict()
    chdir(process.cwd or "/")
    probe = ctx.spec.kit.probe
    if probe:
        run_probe(ctx, probe)
        return
    if not process.args:
        raise KitError(
            "no command to run", fix="give a command after the image or --rootfs", exit_code=127
        )
    program = find_executable(process.args[0], env, process.cwd or "/")
    if program is None:
        raise KitError(
            f"executable not found in rootfs: {process.args[0]}",
            cause=f"no such file in {env.get('PATH', DEFAULT_PATH)}"
            if "/" not in process.args[0]
            else "no such file in the container",
            fix="check the name, or add the program to the root filesystem "
            "(`kit rootfs build --program NAME`)",
            exit_code=127,
        )
    # OCI create: stop here until `kit start` (see kit.runtime.gate); nothing else waits.
    gate.wait_for_start(ctx)
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    close_range(3, flags=CLOSE_RANGE_CLOEXEC)
    try:
        execve(program, list(process.args), env)
    except KitError as error:
        if error.errno == errno.ENOENT:
            raise explain_missing_loader(program) from None
        error.exit_code = 126 if error.errno in (errno.EACCES, errno.ENOEXEC, errno.EPERM) else 127
        raise


def prepare_probe(ctx: InitContext) -> None:
    """Import the probe's module while host paths are still visible (before pivot_root)."""
    probe = ctx.spec.kit.probe
    if probe:
        module, _, function = probe.partition(":")
        ctx.scratch["probe"] = getattr(importlib.import_module(module), function)


def run_probe(ctx: InitContext, name: str) -> None:
    """Run a Python probe in the finished container and send its result as an event."""
    function = ctx.scratch["probe"]
    close_range(3, flags=CLOSE_RANGE_CLOEXEC)
    result = function(**ctx.spec.kit.probe_args)
    tracer().emit(Event("result", name, data={"result": result}))
