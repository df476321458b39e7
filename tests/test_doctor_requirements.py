"""Lesson requirements on this machine: ``kit.doctor.requirements`` answers "can a lesson
needing these keys run here, and if not, why and what to do" from the real checks, checked
against independent oracles (the mount table, which(1), a real registry, a real container that
dropped capabilities).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import kit_command

from kit import mounts
from kit.doctor import requirements
from kit.doctor.distro import CONTAINER_FIX
from kit.errors import KitError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def facts() -> requirements.Facts:
    """The checks of this machine, gathered once (as the lesson framework does)."""
    return requirements.Facts.gather()


def _cgroup_mode() -> str:
    """The oracle: the mount table's cgroup filesystems."""
    table = mounts.read()
    v1 = any(m.fstype == "cgroup" and set(m.super_options) & {"memory", "pids"} for m in table)
    v2 = any(m.fstype == "cgroup2" for m in table)
    return "hybrid" if v1 and v2 else "v1" if v1 else "v2"


def _landlock_abi() -> int:
    """The oracle: landlock_create_ruleset(NULL, 0, VERSION) through plain ctypes."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))


# ----------------------------------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------------------------------


def test_every_listed_key_names_a_requirement() -> None:
    keys = requirements.all_keys()
    assert len(keys) == len(set(keys))
    assert requirements.unknown(keys) == []
    for key in keys:
        requirement = requirements.requirement(key)
        assert requirement.title and requirement.why, key


def test_typos_in_lessons_are_caught() -> None:
    keys = ["root", "cgroup:memroy", "tool:", "landlock:0", "namespace:pid", "landlock:3", "usrns"]
    assert requirements.unknown(keys) == ["cgroup:memroy", "tool:", "landlock:0", "usrns"]
    with pytest.raises(KitError) as caught:
        requirements.Facts([]).assess(["usrns"])
    assert "unknown lesson requirement(s): usrns" in str(caught.value)
    assert "tool:NAME" in (caught.value.fix or "")


# ----------------------------------------------------------------------------------------------
# This machine (root, hybrid cgroups, every namespace, overlay, Landlock)
# ----------------------------------------------------------------------------------------------


def test_root_lesson_runs_here(facts: requirements.Facts) -> None:
    assert os.geteuid() == 0
    lesson = facts.assess(["root", "overlay", "namespace:pid", "namespace:time", "seccomp"])
    assert lesson.runnable, lesson.explain()
    assert lesson.explain().startswith("Everything this lesson needs is here.")
    assert lesson.to_dict()["runnable"] is True


def test_cgroup_lessons_say_which_files_they_meet_here(facts: requirements.Facts) -> None:
    mode = _cgroup_mode()
    memory = facts.outcome("cgroup:memory")
    assert memory.met, memory.found
    v2 = facts.outcome("cgroup:v2")
    if mode == "v2":
        assert v2.met
        assert "memory.max (v2)" in memory.note
    else:
        assert "memory.limit_in_bytes (v1)" in memory.note
        assert not v2.met
        assert "systemd.unified_cgroup_hierarchy=1" in v2.fix
        lesson = facts.assess(["root", "cgroup:v2"])
        assert [u.key for u in lesson.unmet] == ["cgroup:v2"]
        assert f"cgroups are {mode} here" in lesson.explain()


def test_landlock_abi_keys_follow_the_kernel(facts: requirements.Facts) -> None:
    abi = _landlock_abi()
    assert abi >= 1
    assert facts.outcome("landlock").met
    assert facts.outcome(f"landlock:{abi}").met
    newer = facts.outcome(f"landlock:{abi + 1}")
    assert not newer.met
    assert f"Landlock ABI {abi}, the lesson needs {abi + 1}" == newer.found


def test_tool_keys_follow_which(facts: requirements.Facts) -> None:
    path = os.environ["PATH"] + ":/usr/sbin:/sbin"
    for tool in ("runc", "umoci", "skopeo", "podman", "busybox", "tmux", "docker-registry"):
        assert facts.outcome(f"tool:{tool}").met is bool(shutil.which(tool, path=path)), tool
    missing = facts.outcome("tool:kit-no-such-program")
    assert not missing.met
    assert "install the kit-no-such-program package" in missing.fix


def test_namespace_keys_follow_proc(facts: requirements.Facts) -> None:
    for ns_file, kind in (("mnt", "mount"), ("pid", "pid"), ("time", "time"), ("user", "user")):
        assert facts.outcome(f"namespace:{kind}").met is os.path.exists(f"/proc/self/ns/{ns_file}")


def test_the_answer_is_computed_once_per_key(facts: requirements.Facts) -> None:
    assert facts.outcome("root") is facts.outcome("root")


# ----------------------------------------------------------------------------------------------
# registry:local against a real registry
# ----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab_registry(tmp_path: Path) -> Iterator[dict[str, str]]:
    """scripts/lab-registry.sh with its state in tmp_path, on a free loopback port."""
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path}/storage\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    env = {
        **os.environ,
        "KIT_REGISTRY_CONFIG": str(config),
        "KIT_REGISTRY_SEED": str(tmp_path / "seed"),
        "KIT_REGISTRY_PIDFILE": str(tmp_path / "registry.pid"),
        "KIT_REGISTRY_LOG": str(tmp_path / "registry.log"),
        "KIT_REGISTRY": f"127.0.0.1:{port}",
    }
    yield env
    subprocess.run([REPO / "scripts" / "lab-registry.sh", "stop"], env=env, check=False)


def _registry(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REPO / "scripts" / "lab-registry.sh", action],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_registry_requirement_against_a_real_registry(
    lab_registry: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KIT_REGISTRY", lab_registry["KIT_REGISTRY"])
    checks = requirements.Facts([])
    down = checks.outcome("registry:local")
    assert not down.met
    assert "scripts/lab-setup.sh --registry" in down.fix
    started = _registry(lab_registry, "start")
    assert started.returncode == 0, started.stderr
    assert f"pushed {lab_registry['KIT_REGISTRY']}/kit/busybox:latest" in started.stdout
    assert requirements.Facts([]).outcome("registry:local").met
    # The seed image is a real image: kit pulls it and runs it (no network beyond loopback).
    image = f"{lab_registry['KIT_REGISTRY']}/kit/busybox:latest"
    env = {**os.environ, "KIT_ROOT": str(tmp_path / "kit")}
    pulled = kit_command("pull", image, env=env, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    script = "echo from the seed; ls /bin/busybox"
    ran = kit_command("run", "--rm", image, "sh", "-c", script, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["from", "the", "seed", "/bin/busybox"]
    # Seeding twice changes nothing; stopping makes the requirement unmet again.
    again = _registry(lab_registry, "seed")
    assert "unchanged" in again.stdout
    assert _registry(lab_registry, "stop").returncode == 0
    assert not requirements.Facts([]).outcome("registry:local").met


# ----------------------------------------------------------------------------------------------
# kit doctor --require / --requirements
# ----------------------------------------------------------------------------------------------


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return kit_command("doctor", *args, timeout=120)


def test_cli_require(kit_root: Path) -> None:
    met = _doctor("--require", "root,namespace:pid,overlay")
    assert met.returncode == 0, met.stdout + met.stderr
    assert met.stdout.startswith("Everything this lesson needs is here.")
    unmet = _doctor("--require", "root,tool:kit-no-such-program", "--json")
    assert unmet.returncode == 1
    answer = json.loads(unmet.stdout)
    assert answer["runnable"] is False
    assert [u["key"] for u in answer["unmet"]] == ["tool:kit-no-such-program"]
    typo = _doctor("--require", "rooot")
    assert typo.returncode != 0 and "unknown lesson requirement(s): rooot" in typo.stderr


def test_cli_requirements_and_json(kit_root: Path) -> None:
    listed = _doctor("--requirements")
    assert listed.returncode == 0
    lines = [line for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert [line.split()[1].rstrip(":") for line in lines] == requirements.all_keys()
    full = json.loads(_doctor("--json").stdout)
    assert set(full["requirements"]) == set(requirements.all_keys())
    assert full["requirements"]["root"]["met"] is True


# ----------------------------------------------------------------------------------------------
# Inside a container that dropped capabilities (what Docker does by default)
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def python_rootfs(tmp_path: Path) -> Path:
    """A root filesystem whose /usr, Python and kit are the host's, bound read-only."""
    root = tmp_path / "rootfs"
    for name in ("usr", "etc", "tmp", *(p.lstrip("/") for p in _host_paths())):
        (root / name).mkdir(parents=True, exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib64"):
        if Path("/", name).is_symlink():  # usr-merged Debian/Ubuntu
            (root / name).symlink_to(os.readlink(Path("/", name)))
        else:
            (root / name).mkdir()
    for name in ("os-release", "passwd", "group"):
        shutil.copy(Path("/etc", name), root / "etc" / name)
    return root


def _host_paths() -> list[str]:
    """Python (its prefix and, for a venv, the base installation) and kit, outside /usr."""
    paths = dict.fromkeys((sys.base_prefix, sys.prefix, str(REPO)))
    return [p for p in paths if not Path(p).is_relative_to("/usr")]


def _doctor_in_container(rootfs: Path, kit_root: Path, *options: str) -> dict[str, object]:
    binds = []
    for path in ("/usr", *_host_paths()):
        binds += ["-v", f"{path}:{path}:ro"]
    if not Path("/lib").is_symlink():
        binds += ["-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro", "-v", "/bin:/bin:ro"]
    python_env = ["-e", f"PYTHONPATH={REPO}", "-e", "PYTHONDONTWRITEBYTECODE=1"]
    done = kit_command(
        *("run", "--rm", "--rootfs", str(rootfs), *binds, *options, *python_env),
        *(sys.executable, "-m", "kit", "doctor", "--json"),
        env={**os.environ, "KIT_ROOT": str(kit_root)},
        timeout=180,
    )
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_doctor_inside_a_confined_container_asks_for_privileges(
    python_rootfs: Path, kit_root: Path
) -> None:
    report = _doctor_in_container(python_rootfs, kit_root)
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]
    assert report["can_run_containers"] is False
    assert checks["privileges"]["status"] == "fail"
    assert checks["privileges"]["fix"] == CONTAINER_FIX
    assert "refused although the kernel has them" in checks["namespaces"]["detail"]
    assert "capabilities" in checks["environment"]["data"]["hints"]
    assert report["requirements"]["root"]["fix"] == CONTAINER_FIX  # type: ignore[index]
    # The oracle: the same container with the privileges the fix names can run containers.
    privileged = _doctor_in_container(
        python_rootfs,
        kit_root,
        "--cap-add",
        "ALL",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "systempaths=unconfined",
    )
    assert privileged["can_run_containers"] is True
    names = {c["name"]: c for c in privileged["checks"]}  # type: ignore[attr-defined]
    assert names["privileges"]["status"] == "ok"
