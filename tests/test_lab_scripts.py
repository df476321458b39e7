"""scripts/lab-setup.sh and scripts/cloud-init.yaml, in the default run: the dry run on this
machine (which must change nothing), the refusals, and the user-data's command line. The real
set-up on a fresh Debian runs in tests/test_lab.py (``pytest -m lab``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from unprivileged import readable_checkout

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / "scripts" / "lab-setup.sh"
CLOUD_INIT = REPO / "scripts" / "cloud-init.yaml"


def _setup(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(SETUP), *args]
    if user is not None:  # util-linux drops to an ordinary user, who must be able to read it
        command = [str(readable_checkout() / "scripts" / "lab-setup.sh"), *args]
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _next_subid() -> int:
    """The oracle for the first free subordinate id: after every range on this host."""
    end = 100000
    for name in ("/etc/subuid", "/etc/subgid"):
        for line in Path(name).read_text().splitlines() if Path(name).exists() else []:
            parts = line.split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                end = max(end, int(parts[1]) + int(parts[2]))
    return end


def test_scripts_parse() -> None:
    for script in ("lab-setup.sh", "lab-registry.sh"):
        done = subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=False)
        assert done.returncode == 0, script


def test_dry_run_changes_nothing_and_says_what_it_would_do(tmp_path: Path) -> None:
    venv, bin_dir = tmp_path / "venv", tmp_path / "bin"
    subuid_before = Path("/etc/subuid").read_bytes() if Path("/etc/subuid").exists() else b""
    done = _setup(
        "--dry-run",
        "--students",
        "2",
        "--student-prefix",
        "kitlabtest",
        "--venv",
        str(venv),
        "--bin-dir",
        str(bin_dir),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"would write: {bin_dir}/kit" in lines
    assert f"would write: {bin_dir}/kit-tutorial" in lines
    assert any(line.endswith(f"-m venv {venv}") for line in lines)
    assert "would run: useradd --create-home --shell /bin/bash kitlabtest1" in lines
    start = _next_subid()
    first = f"{start}-{start + 65535}"
    second = f"{start + 65536}-{start + 2 * 65536 - 1}"
    assert f"would run: usermod --add-subuids {first} --add-subgids {first} kitlabtest1" in lines
    assert f"would run: usermod --add-subuids {second} --add-subgids {second} kitlabtest2" in lines
    assert re.search(r"dry run: \d+ change\(s\) would be made", done.stdout)
    assert not tmp_path.joinpath("venv").exists() and not bin_dir.exists()
    current = Path("/etc/subuid").read_bytes() if Path("/etc/subuid").exists() else b""
    assert current == subuid_before
    assert subprocess.run(["id", "kitlabtest1"], capture_output=True, check=False).returncode != 0


def test_dry_run_needs_no_root_and_the_real_run_does(tmp_path: Path) -> None:
    dry = _setup("--dry-run", "--venv", str(tmp_path / "v"), "--bin-dir", str(tmp_path), user=65534)
    assert dry.returncode == 0, dry.stderr
    real = _setup("--venv", str(tmp_path / "v"), user=65534)
    assert real.returncode == 2
    assert "needs root" in real.stderr and "--dry-run" in real.stderr


def test_bad_options_are_refused() -> None:
    bad = _setup("--students", "many")
    assert bad.returncode == 2 and "whole number" in bad.stderr
    unknown = _setup("--frobnicate")
    assert unknown.returncode == 2 and "unknown option: --frobnicate" in unknown.stderr
    missing = _setup("--dry-run", "--users", "kit-no-such-user")
    assert missing.returncode == 2 and "no account kit-no-such-user" in missing.stderr
    help_text = _setup("--help")
    assert help_text.returncode == 0
    for option in ("--dry-run", "--students N", "--registry", "--allow-userns", "--users"):
        assert option in help_text.stdout


def test_cloud_init_runs_the_setup_with_options_it_accepts(tmp_path: Path) -> None:
    text = CLOUD_INIT.read_text()
    assert text.startswith("#cloud-config\n")
    env = dict(re.findall(r"^\s+(KIT_\w+)=(\S+)$", text, re.MULTILINE))
    assert env["KIT_STUDENTS"].isdigit()
    (command,) = [line for line in text.splitlines() if "lab-setup.sh --" in line]
    inner = shlex.split(command.split("[sh, -c, ", 1)[1].rstrip("]"))[0]
    setup_args = shlex.split(inner.split("lab-setup.sh", 1)[1])
    setup_args = [env.get(a.strip("$"), a) for a in setup_args]
    done = _setup(
        "--dry-run", *setup_args, "--venv", str(tmp_path / "v"), "--bin-dir", str(tmp_path / "b")
    )
    assert done.returncode == 0, done.stderr
    assert f"student{env['KIT_STUDENTS']}" in done.stdout
