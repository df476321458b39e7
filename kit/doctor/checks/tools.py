"""Programs some lessons use: busybox (a whole userland in one static file) and the peer
tools kit is compared with (runc, umoci, skopeo, podman, tmux)."""

from __future__ import annotations

import os
from typing import Any

from kit import elf
from kit.doctor.check import Check
from kit.doctor.context import Context
from kit.doctor.readers import which
from kit.errors import KitError

TOOL_USES = {
    "runc": "the reference runtime; lessons compare kit with it",
    "umoci": "unpacks and repacks OCI images; image lessons use it as an oracle",
    "skopeo": "copies images between registries and layouts; image lessons use it",
    "podman": "a container engine that can drive kit as its OCI runtime",
    "tmux": "the real terminal for interactive lessons and their tests",
}


def check_tool(ctx: Context, tool: str) -> Check:
    """An optional program: where it is, or how to install it."""
    path = which(tool)
    if path:
        return Check(tool, "ok", f"{path}: {TOOL_USES[tool]}", data={"path": path})
    return Check(
        tool,
        "warn",
        f"not installed (optional: {TOOL_USES[tool]})",
        ctx.host.install(tool),
        {"path": None},
    )


def check_busybox(ctx: Context) -> Check:
    """busybox, statically linked: a whole userland in one file for a root filesystem."""
    path = which("busybox")
    data: dict[str, Any] = {"path": path, "static": None}
    if not path:
        return Check(
            "busybox",
            "warn",
            "not installed: kit builds root filesystems from host binaries and their "
            "libraries instead, and the busybox lessons cannot run",
            ctx.host.install("busybox"),
            data,
        )
    try:
        static: bool | None = elf.is_static(os.path.realpath(path))
    except KitError:
        static = None  # not an ELF file (a wrapper script?)
    data["static"] = static
    if static:
        return Check(
            "busybox",
            "ok",
            f"{path}, statically linked: one file is a root filesystem's whole userland",
            data=data,
        )
    return Check(
        "busybox",
        "warn",
        f"{path} is dynamically linked: copied alone into a rootfs it cannot start (its loader "
        "and libc are missing)",
        ctx.host.install("busybox"),
        data,
    )
