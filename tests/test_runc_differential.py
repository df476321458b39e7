"""kit against runc: one spec, two runtimes, the same probe report.

The spec comes from kit's own command line (`kit run` options -> Spec); runc gets it as
config.json (Spec.to_json is OCI) with the same root filesystem. A program inside each
container reports its capability sets, no_new_privs, seccomp mode, mount options and masked
paths; the two reports must agree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kit.cli import _Parser
from kit.cli import run as run_cli
from kit.paths import root_tag
from kit.runtime.defaults import default_spec
from kit.security import probe_report
from kit.spec import Capabilities, Spec

pytestmark = pytest.mark.usefixtures("kit_root")

RUNC = shutil.which("runc")


def cli_spec(rootfs: Path, options: list[str]) -> Spec:
    """The spec `kit run OPTIONS --rootfs ROOTFS true` would run."""
    parser = _Parser(prog="kit run")
    run_cli.add_run_arguments(parser)
    args = parser.parse_args([*options, "--rootfs", str(rootfs), "true"])
    return run_cli.build_spec(args, os.urandom(32).hex())


def both(spec: Spec) -> tuple[probe_report.ProbeReport, probe_report.ProbeReport]:
    assert RUNC is not None, "runc is needed (Debian package runc)"
    ours = probe_report.run_kit(spec)
    # A cgroup path named like kit's own, so the leak guard would see one runc left behind.
    cgroup = f"/kit/{root_tag()}-runc-{os.urandom(4).hex()}"
    theirs = probe_report.run_runc(spec, runc=RUNC, cgroups_path=cgroup)
    return ours, theirs


OPTION_SETS = {
    "defaults": [],
    "read-only": ["--read-only", "--tmpfs", "/run:size=1m"],
    "drop-all-add-one": ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
    "add-sys-admin": ["--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN"],
    "no-new-privileges-off": ["--security-opt", "no-new-privileges=false"],
    "unconfined": [
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "systempaths=unconfined",
    ],
    "non-root": ["-u", "1000:1000"],
    "non-root-nnp-off": ["-u", "1000", "--security-opt", "no-new-privileges=false"],
}


@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
def test_kit_and_runc_give_the_same_report(busybox_rootfs: Path, options: list[str]) -> None:
    spec = cli_spec(busybox_rootfs, options)
    ours, theirs = both(spec)
    assert probe_report.differences(ours, theirs) == []
    # The report is not empty: the comparison covered real facts.
    assert "/" in ours.mounts and "/proc" in ours.mounts and "bounding" in ours.capabilities
    assert ours.masked


def test_the_reports_differ_when_the_specs_do(busybox_rootfs: Path) -> None:
    # The comparison can fail: runc with a different spec gives a different report.
    spec = cli_spec(busybox_rootfs, [])
    other = cli_spec(busybox_rootfs, ["--read-only", "--cap-drop", "CHOWN"])
    ours = probe_report.run_kit(spec)
    theirs = probe_report.run_runc(
        other, runc=RUNC or "runc", cgroups_path=f"/kit/{root_tag()}-runc-differ"
    )
    found = probe_report.differences(ours, theirs)
    assert any(line.startswith("mounts[/]") for line in found)
    assert any(line.startswith("capabilities[") for line in found)


def test_ambient_and_inheritable_sets_agree(busybox_rootfs: Path) -> None:
    spec = default_spec(["/bin/true"], str(busybox_rootfs), hostname="ambient")
    keep = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    spec.process.capabilities = Capabilities(
        bounding=keep, effective=keep, permitted=keep, inheritable=keep, ambient=["CAP_KILL"]
    )
    spec.process.user.uid = spec.process.user.gid = 1000
    ours, theirs = both(spec)
    assert probe_report.differences(ours, theirs) == []
    assert ours.capabilities["ambient"] == ["CAP_KILL"]
    assert ours.capabilities["effective"] == ["CAP_KILL"]  # non-root: only ambient survives


def test_the_report_reads_what_it_claims(busybox_rootfs: Path) -> None:
    ours = probe_report.run_kit(cli_spec(busybox_rootfs, ["--read-only"]))
    assert ours.no_new_privs and ours.seccomp == 2 and ours.seccomp_filters >= 1
    assert ours.mounts["/"][0] == "ro" and ours.mounts["/proc/sys"][0] == "ro"
    assert ours.masked["/proc/timer_list"] == "char-device"
    assert ours.masked["/sys/firmware"] == "empty-dir"
    text = "\n".join(ours.lines())
    assert "no_new_privs on" in text and "seccomp      filter" in text
