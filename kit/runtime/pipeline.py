"""The ordered stages of container creation, and how they run, pause and report.

``namespaces`` and ``cgroups`` are done mostly by the init's first process, the init parent
(it must create the PID namespace *before* the container's first process exists, write the
user namespace's id maps from outside it, and move the process into its cgroups), with the
container process finishing each (see the handshake in :mod:`kit.runtime.init`); every later
stage runs in the container process itself, which becomes PID 1 of the new PID namespace.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from kit.errors import KitError
from kit.runtime.context import InitContext
from kit.runtime.stages import (
    capabilities,
    console,
    devices,
    exec,
    hostname,
    identity,
    kernel_filesystems,
    landlock,
    masked_paths,
    mount_propagation,
    network,
    no_new_privs,
    pivot_root,
    propagation,
    readonly_paths,
    readonly_root,
    rlimits,
    rootfs,
    seccomp,
    volumes,
)
from kit.trace import Event, tracer


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str
    run: Callable[[InitContext], None] | None


#: The stages the init parent leads (see kit.runtime.init).
NAMESPACES = Stage(
    "namespaces",
    "create the user (with --userns), mount, PID, UTS, IPC and network namespaces",
    None,
)
CGROUPS = Stage(
    "cgroups",
    "put the container in its cgroups (limits, device policy), then unshare the cgroup namespace",
    None,
)
PARENT_STAGES: list[Stage] = [NAMESPACES, CGROUPS]

#: Stages that run inside the container process, in order.
CONTAINER_STAGES: list[Stage] = [
    Stage("propagation", "make the copied mount tree private", propagation.run),
    Stage("rootfs", "bind the root filesystem onto itself", rootfs.run),
    Stage(
        "kernel-filesystems", "mount /proc, /dev, /dev/pts, /dev/shm, /sys", kernel_filesystems.run
    ),
    Stage("devices", "create device nodes and /dev symlinks", devices.run),
    Stage("volumes", "mount bind mounts, volumes and tmpfs", volumes.run),
    Stage("pivot-root", "swap roots and detach the host's root", pivot_root.run),
    Stage("mount-propagation", "re-apply the propagation mounts asked for", mount_propagation.run),
    Stage("readonly-root", "remount / read-only (with --read-only)", readonly_root.run),
    Stage("readonly-paths", "make /proc/sys and other kernel knobs read-only", readonly_paths.run),
    Stage("masked-paths", "hide /proc/kcore and other host details", masked_paths.run),
    Stage("hostname", "set the container's hostname", hostname.run),
    Stage("network", "bring up loopback", network.run),
    Stage("console", "create the terminal (with -t)", console.run),
    Stage("rlimits", "set per-process resource limits (--ulimit)", rlimits.run),
    Stage("identity", "switch to the container's user and groups", identity.run),
    Stage("capabilities", "keep only the listed capabilities, in all five sets", capabilities.run),
    Stage("no-new-privs", "forbid gaining privileges through execve", no_new_privs.run),
    Stage("landlock", "restrict the reachable paths (--landlock)", landlock.run),
    Stage("seccomp", "filter every later system call", seccomp.run),
    Stage("exec", "close leaked fds and execve the program", exec.run),
]

STAGES: list[Stage] = [*PARENT_STAGES, *CONTAINER_STAGES]


def stage_names() -> list[str]:
    return [stage.name for stage in STAGES]


def check_stage_names(names: list[str]) -> None:
    """Refuse unknown stage names given to --pause-after/--pause-before."""
    known = stage_names()
    for name in names:
        if name not in known:
            raise KitError(
                f"unknown stage {name!r}",
                fix=f"choose one of: {', '.join(known)}",
                exit_code=2,
            )


def pause(ctx: InitContext, stage: str, phase: str) -> None:
    """Tell the caller we are waiting at a stage boundary, and wait for one byte.

    End-of-file means the caller is gone or aborted: the container process exits, and with it
    every mount of its namespace disappears. Nothing is left behind.
    """
    tracer().emit(Event("pause", stage, phase=phase, message=f"paused {phase} {stage}"))
    if os.read(ctx.channels.resume, 1) == b"":
        raise SystemExit(130)


def pause_between(ctx: InitContext, done: Stage, following: Stage | None) -> None:
    """Pause after a stage the init parent led, and before the next one, if asked."""
    if done.name in ctx.options.pause_after:
        pause(ctx, done.name, "after")
    if following is not None and following.name in ctx.options.pause_before:
        pause(ctx, following.name, "before")


def run_container_stages(ctx: InitContext) -> None:
    """Run the in-container stages (``namespaces`` and ``cgroups`` are done)."""
    log = tracer()
    for stage in CONTAINER_STAGES:
        log.stage = stage.name
        if stage.name in ctx.options.pause_before:
            pause(ctx, stage.name, "before")
        if log.active:
            log.emit(Event("stage", stage.name, phase="start", message=stage.summary))
        assert stage.run is not None
        if stage.name == "exec" and log.active:
            # exec does not return: its end is announced just before the execve.
            log.emit(Event("stage", stage.name, phase="end"))
        stage.run(ctx)
        if stage.name != "exec" and log.active:
            log.emit(Event("stage", stage.name, phase="end"))
        if stage.name in ctx.options.pause_after and stage.name != "exec":
            pause(ctx, stage.name, "after")
