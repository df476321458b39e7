"""Stage ``seccomp``: the last thing before exec, a filter on every system call.

The profile (linux.seccomp, OCI form) is compiled into a classic BPF program
(:mod:`kit.security.seccomp_filter`) and handed to seccomp(2). From then on the kernel runs
the program on every system call of the container: allowed calls proceed, refused ones fail
with the profile's errno (EPERM by default) before the kernel does anything.

It runs last because it may refuse calls kit itself still makes while setting up: only
``chdir``, closing file descriptors and ``execve`` come after it. The program is made
earlier, by :func:`prepare`, while the host's files are still reachable: compiled, or taken
from kit's cache of compiled filters (:mod:`kit.security.seccomp_cache`).

Installing a filter needs no_new_privs or CAP_SYS_ADMIN. With no_new_privs off, the
``capabilities`` stage installs the filter *before* it drops CAP_SYS_ADMIN (as runc does),
and this stage finds it done.
"""

from __future__ import annotations

from typing import Any

from kit.linux.seccomp import set_mode_filter
from kit.runtime.context import InitContext
from kit.security.seccomp_cache import compiled_filter
from kit.spec import Spec
from kit.trace import Event, tracer

_INSTALLED = "seccomp-installed"

#: The filter made by :func:`prepare`: the profile, and its (BPF program, seccomp(2) flags).
#: The container process inherits it through fork, as it inherits the start FIFO
#: (kit.runtime.gate).
_prepared: dict[str, Any] = {}


def prepare(spec: Spec) -> None:
    """Make the filter while the host is still in reach: the init parent calls this before it
    forks the container process, kit exec's joiner before it joins the container. Inside,
    after pivot_root, neither kit's cache nor the compiler's module files can be read."""
    if spec.linux.seccomp is not None:
        _prepared["profile"] = spec.linux.seccomp
        _prepared["filter"] = compiled_filter(spec.linux.seccomp)


def run(ctx: InitContext) -> None:
    if ctx.spec.linux.seccomp is None:
        return
    if ctx.scratch.get(_INSTALLED):
        log = tracer()
        if log.active:
            log.emit(
                Event(
                    "info",
                    "info",
                    message="the filter was installed by the capabilities stage "
                    "(no_new_privs is off, so it needed CAP_SYS_ADMIN)",
                )
            )
        return
    install(ctx, note="every later system call is checked by this filter")


def must_install_early(ctx: InitContext) -> bool:
    """Without no_new_privs the filter needs CAP_SYS_ADMIN: install it before dropping it."""
    return ctx.spec.linux.seccomp is not None and not ctx.spec.process.no_new_privileges


def install(ctx: InitContext, *, note: str) -> None:
    assert ctx.spec.linux.seccomp is not None
    profile = ctx.spec.linux.seccomp
    if _prepared.get("profile") is profile:
        program, flags = _prepared["filter"]
    else:  # nobody prepared it (a caller that still sees the host's files): compile now
        program, flags = compiled_filter(profile)
    set_mode_filter(program, flags, note=note)
    ctx.scratch[_INSTALLED] = True
