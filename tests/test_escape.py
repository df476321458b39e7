"""The old root is unreachable: the classic chroot escape works after chroot, not after pivot_root.

The escape (chroot into a subdirectory, climb ``..``, ``chroot(".")``) only reads: it lists
``/`` and compares the identity (device, inode) of the root it ends up in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kit.probes.experiment import run_experiment
from kit.runtime.defaults import default_spec
from kit.runtime.launcher import ContainerProcess

pytestmark = pytest.mark.usefixtures("kit_root")


def host_root_identity() -> list[int]:
    st = os.stat("/")
    return [st.st_dev, st.st_ino]


def test_chroot_alone_is_escaped(host_rootfs: Path) -> None:
    # The control: without pivot_root the same climb reaches the host's real root.
    result = run_experiment("kit.probes.escape:chroot_and_escape", root=str(host_rootfs))
    assert result["inside"]["listing"] == sorted(os.listdir(host_rootfs))
    assert result["escaped"]["root"] == host_root_identity()
    assert result["escaped"]["listing"] == sorted(os.listdir("/"))


def test_escape_from_a_pivoted_container_stays_inside(host_rootfs: Path) -> None:
    spec = default_spec(["/bin/true"], str(host_rootfs))
    spec.kit.probe = "kit.probes.escape:escape_from_container"
    with ContainerProcess(spec) as container:
        status = container.wait()
    assert status.code == 0, status.error
    result = status.result
    # The climb ends where it started: the container's own root.
    assert result["after"]["root"] == result["before"]["root"]
    assert result["after"]["listing"] == result["before"]["listing"]
    assert result["after"]["root"] != host_root_identity()
    assert set(os.listdir(host_rootfs)) <= set(result["after"]["listing"])
