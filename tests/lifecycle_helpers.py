"""Helpers for the tests of living containers (detached, exec, cp/export, OCI, podman).

``containers`` (a fixture in each test module, built on :func:`remove_all`) removes every
container of the test's KIT_ROOT at teardown, running or not, so that no monitor or container
outlives its test (the leak guard would find the monitor through KIT_ROOT in its
environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import kit_command

REPO = Path(__file__).resolve().parent.parent


def kit(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The kit CLI in its own process, which must succeed unless ``check=False`` (KIT_ROOT
    comes from the environment, see kit_root)."""
    return kit_command(*args, check=check, **{"cwd": REPO, **kwargs})


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; return its value (no timing is asserted)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def container_pid(kit_root: Path, timeout: float = 10.0) -> int:
    """The host PID of the one container recorded under ``kit_root``, once it is running."""

    def recorded_pid() -> int | None:
        for state in (kit_root / "run" / "containers").glob("*/state.json"):
            try:
                data = json.loads(state.read_text())
            except (json.JSONDecodeError, FileNotFoundError):
                continue  # removed meanwhile, or not written yet
            if data.get("pid"):
                return int(data["pid"])
        return None

    return wait_for(recorded_pid, timeout, what="the container to start")


def record(kit_root: Path, container_id: str) -> dict[str, Any]:
    """A container's state.json as written by kit."""
    path = kit_root / "run" / "containers" / container_id / "state.json"
    return json.loads(path.read_text())


def find_record(kit_root: Path, name: str) -> dict[str, Any]:
    for path in (kit_root / "run" / "containers").glob("*/state.json"):
        data = json.loads(path.read_text())
        if data["name"] == name or data["id"] == name:
            return data
    raise AssertionError(f"no container {name}")


def inspect(name: str) -> dict[str, Any]:
    return json.loads(kit("inspect", name).stdout)[0]


def stopped(name: str) -> dict[str, Any] | None:
    """The inspect document once the container has stopped and its exit is recorded."""
    document = inspect(name)
    state = document["State"]
    if state["Status"] == "stopped" and (state["ExitCode"] is not None or state["Error"]):
        return document
    return None


def remove_all() -> None:
    """Force-remove every container of the current KIT_ROOT (in this process)."""
    from kit.runtime import lifecycle, state

    for found in state.list_states():
        lifecycle.remove(found, force=True)


def alive(pid: int) -> bool:
    from kit.runtime.state import process_start_time

    return process_start_time(pid) is not None


def cmdline(pid: int) -> str:
    """The command line of ``pid``, words joined by spaces ("" once it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def parent_pid(pid: int) -> int:
    """The parent of ``pid``, from /proc/PID/stat (split after the last ")": the command
    name in parentheses may itself hold spaces and parentheses)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def ns_ids(pid: int | str) -> dict[str, int]:
    from kit.linux.namespaces import namespace_ids

    return namespace_ids(pid)


def busybox_image(kit_root: Path, tmp_path: Path, name: str = "box:1") -> str:
    """An image of one busybox layer (with the applets tests use) in the test's store."""
    from image_helpers import image_from_dirs

    from kit.image.store import Store

    base = tmp_path / "image-layer"
    (base / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", base / "bin" / "busybox")
    for applet in (
        "sh",
        "ls",
        "cat",
        "echo",
        "id",
        "pwd",
        "rm",
        "mkdir",
        "sleep",
        "touch",
        "ln",
        "head",
        "tail",
        "readlink",
        "stat",
        "hostname",
        "tty",
        "grep",
        "ps",
        "mknod",
        "chmod",
        "wc",
        "env",
        "kill",
        "true",
        "tr",
    ):
        os.symlink("busybox", base / "bin" / applet)
    (base / "etc").mkdir()
    (base / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
    )
    (base / "etc" / "group").write_text("root:x:0:\napp:x:1000:\n")
    (base / "etc" / "motd").write_text("from the image\n")
    (base / "srv").mkdir()
    (base / "srv" / "data.txt").write_text("image data\n")
    image_from_dirs(Store().init(), [base], name, run={"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]})
    return name
