"""What every stage of the container init can see: the spec, the root, and the channels home."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from kit.rootpath import resolve_in_root
from kit.spec import Spec


@dataclass
class Channels:
    """File descriptors between the caller (the launcher) and the init processes.

    ``events``: the init writes JSON-lines events here. ``control``: the caller sends signals to
    forward, and its end-of-file tells the init that the caller died. ``resume``: the container
    process waits here at a pause; one byte continues, end-of-file aborts. ``console``: a unix
    socket on which the container process sends the master side of its terminal (-1: none).
    """

    events: int
    control: int
    resume: int
    console: int = -1

    def fds(self) -> list[int]:
        return [fd for fd in (self.events, self.control, self.resume, self.console) if fd >= 0]

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class InitOptions:
    """How this run of the init behaves (not part of the container's spec)."""

    container_id: str
    pause_before: list[str] = field(default_factory=list)
    pause_after: list[str] = field(default_factory=list)
    #: Keep running when the caller goes away (a detached container's monitor decides).
    detach: bool = False
    #: Send system-call and stage events (False: only what is needed to drive the container).
    trace: bool = True
    #: OCI create/start split: wait at this FIFO just before execve (see kit.runtime.gate).
    exec_fifo: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InitContext:
    """State shared by the stages inside the container process."""

    spec: Spec
    channels: Channels
    options: InitOptions
    #: Absolute host path of the root filesystem; "/" once pivot_root has happened.
    rootfs: str
    pivoted: bool = False
    #: Results stages leave for later ones (e.g. the terminal's file descriptors).
    scratch: dict[str, Any] = field(default_factory=dict)

    def path(self, container_path: str) -> str:
        """Where ``container_path`` is right now: under the rootfs before pivot_root, as-is after.

        Before pivot_root the lookup follows symlinks *inside* the rootfs only, so an untrusted
        root filesystem cannot redirect a mount onto a host path.
        """
        if self.pivoted:
            # lstrip: normpath keeps a leading "//" (POSIX leaves its meaning open).
            return os.path.normpath("/" + container_path.lstrip("/"))
        return resolve_in_root(self.rootfs, container_path)
