"""Lesson 12: The runtime stack.

An OCI bundle (a busybox root filesystem and a config.json written by ``kit spec``) is run by
the runtime half of kit the way engines run runc: ``kit create`` builds the container and
stops before exec (its PID 1 is still kit, waiting at a FIFO), ``kit start`` lets the program
run. The same config.json then runs under runc and under kit, side by side; finally podman, a
real engine, runs a container through kit. Everything lives in the lesson's workspace: the
bundle, kit's state (KIT_ROOT), runc's state, podman's private store. Checks read
``/proc/PID/{cmdline,status}``, the state files and what the containers wrote into a
directory bind-mounted at /out.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from kit.errors import KitError
from kit.podman import CALLS_LOG, PrivatePodman, forget_podman_cgroups, podman_cgroups
from kit.rootfs import build_rootfs
from kit.runtime.oci import example_spec
from kit.spec import Mount, Spec
from kit.trace import Event
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Lesson, Question, Step, Verdict
from lessons.observe import Facts, Output

ID = "lesson12"
PROGRAM = ["sh", "-c", "echo started > /out/started; exec sleep 3600"]
REPORT = (
    "grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; hostname; "
    "grep -E ' /(proc|sys) ' /proc/self/mountinfo | cut -d' ' -f5,6"
)
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def _paths(ctx: StepContext) -> dict[str, Path]:
    ws = ctx.workspace
    return {
        "bundle": ws / "bundle",
        "rootfs": ws / "bundle" / "rootfs",
        "out": ws / "out",
        "kit-root": ws / "kit-root",
        "pid": ws / "container.pid",
        "twin": ws / "twin",
        "podman": ws / "podman",
    }


def _kit(ctx: StepContext, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """The kit CLI (a separate process, as an engine runs its runtime), state in the workspace."""
    env = {**os.environ, "KIT_ROOT": str(_paths(ctx)["kit-root"])}
    options: dict[str, object] = {"capture_output": True, "text": True, "timeout": 120}
    options.update(kw)
    return subprocess.run([sys.executable, "-m", "kit", *args], env=env, check=False, **options)  # type: ignore[call-overload]


def _spec(ctx: StepContext, args: list[str], out: Path) -> Spec:
    spec = example_spec()
    spec.root.path = "rootfs"
    spec.process.args = list(args)
    spec.process.terminal = False
    out.mkdir(parents=True, exist_ok=True)
    spec.mounts.append(Mount("/out", "bind", str(out), ["rbind", "rw"]))
    return spec


def _state_dir(ctx: StepContext) -> Path:
    return _paths(ctx)["kit-root"] / "run" / "containers" / ID


def _pid(ctx: StepContext) -> int | None:
    text = kernel.read_text(_paths(ctx)["pid"])
    if not text or not text.strip().isdigit():
        return None
    pid = int(text)
    return pid if kernel.alive(pid) else None


# --- 1. the bundle ---


def bundle(ctx: StepContext) -> None:
    paths = _paths(ctx)
    _remove_container(ctx)
    if paths["bundle"].exists():
        shutil.rmtree(paths["bundle"])
    paths["bundle"].mkdir(parents=True)
    build_rootfs(paths["rootfs"], "busybox")
    _spec(ctx, PROGRAM, paths["out"]).save(str(paths["bundle"] / "config.json"))
    config = json.loads((paths["bundle"] / "config.json").read_text())
    caps = config["process"].get("capabilities", {}).get("bounding", [])
    ctx.show(
        Facts(
            "bundle/config.json (written by `kit spec`, then edited)",
            [
                ("root", f"{config['root']['path']} (read-only: {config['root'].get('readonly')})"),
                ("process.args", " ".join(config["process"]["args"])),
                ("namespaces", ", ".join(n["type"] for n in config["linux"]["namespaces"])),
                ("mounts", ", ".join(m["destination"] for m in config["mounts"])),
                ("capabilities", f"{len(caps)} in the bounding set"),
                (
                    "seccomp",
                    f"default action {config['linux'].get('seccomp', {}).get('defaultAction')}",
                ),
            ],
        )
    )
    ctx.show(
        Facts(
            "who does what: Docker's stack, and kit's",
            [
                ("dockerd / podman (the engine)", "kit run, kit build: the CLI"),
                ("containerd-shim / conmon", "kit's monitor (kit run -d): reaps, logs"),
                ("snapshotter", "kit.image + the rootfs stage's overlay"),
                ("runc (OCI runtime)", "kit create / start / state / kill / delete"),
                ("the kernel", "namespaces, mounts, cgroups, seccomp: the syscalls in the trace"),
            ],
        )
    )


def check_bundle(ctx: StepContext) -> Verdict:
    paths = _paths(ctx)
    config = paths["bundle"] / "config.json"
    if not config.is_file():
        return Verdict.no("there is no bundle/config.json")
    try:
        spec = Spec.load(str(config))
    except Exception as error:
        return Verdict.no(f"config.json does not load: {error}")
    if spec.unknown:
        return Verdict.no(f"config.json has fields kit does not know: {spec.unknown}")
    if not os.path.exists(paths["rootfs"] / "bin" / "sh"):
        return Verdict.no("bundle/rootfs has no /bin/sh")
    return Verdict.ok(f"a bundle: config.json ({len(spec.mounts)} mounts) and rootfs/")


# --- 2. kit create ---


class OciContainer:
    """The container `kit create` made, kept by the session so that leaving or resetting the
    lesson deletes it (`kit delete --force`). Its PID 1 has pivoted into the bundle's root, so
    /proc/PID/root no longer shows a workspace path for the generic teardown to find."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.name = ID

    @property
    def host_pid(self) -> int | None:
        return _pid(self.ctx)

    @property
    def where(self) -> str:
        return "created or running (kit create)" if self.host_pid else "gone"

    def close(self) -> None:
        if _state_dir(self.ctx).exists():
            _kit(self.ctx, "delete", "--force", ID)


def _remove_container(ctx: StepContext) -> None:
    ctx.session.drop(ID)
    if _state_dir(ctx).exists():
        _kit(ctx, "delete", "--force", ID)
    pid = kernel.read_text(_paths(ctx)["pid"])
    if pid and pid.strip().isdigit() and kernel.alive(int(pid)):
        os.kill(int(pid), signal.SIGKILL)
    _paths(ctx)["pid"].unlink(missing_ok=True)
    (_paths(ctx)["out"] / "started").unlink(missing_ok=True)


def create(ctx: StepContext) -> None:
    paths = _paths(ctx)
    if not (paths["bundle"] / "config.json").exists():
        bundle(ctx)
    _remove_container(ctx)
    # The created container keeps kit create's stdio (an engine's pipes): give it files.
    with open(ctx.workspace / "create.log", "w") as log:
        events = ctx.workspace / "create-events.jsonl"
        events.unlink(missing_ok=True)
        done = _kit(
            ctx,
            "create",
            "--bundle",
            str(paths["bundle"]),
            "--pid-file",
            str(paths["pid"]),
            "--events-file",
            str(events),
            ID,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            capture_output=False,
        )
    if done.returncode != 0:
        raise RuntimeError((ctx.workspace / "create.log").read_text())
    ctx.session.keep(OciContainer(ctx), shell=False)  # type: ignore[arg-type]
    # What the runtime did, as it reported it (the same events `kit run --trace` prints).
    for line in events.read_text().splitlines() if events.exists() else []:
        if line.strip():
            ctx.emit(Event.from_json(line))
    pid = int(paths["pid"].read_text())
    state = json.loads(_kit(ctx, "state", ID).stdout)
    ctx.show(Output("kit state lesson12", json.dumps(state, indent=2)))
    cmdline = (kernel.read_text(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
    ctx.show(
        Facts(
            "the created container, from the host",
            [
                ("its PID 1 runs", cmdline[:80]),
                ("waiting in", (kernel.read_text(f"/proc/{pid}/wchan") or "?").strip()),
                ("exec.fifo", "exists" if (_state_dir(ctx) / "exec.fifo").exists() else "gone"),
                ("/out/started", "written" if (paths["out"] / "started").exists() else "not yet"),
                ("new namespaces", ", ".join(sorted(kernel.new_namespaces(pid)))),
            ],
        )
    )


def check_create(ctx: StepContext) -> Verdict:
    pid = _pid(ctx)
    if pid is None:
        return Verdict.no("no container process from `kit create` is alive")
    cmdline = kernel.read_text(f"/proc/{pid}/cmdline") or ""
    if "kit" not in cmdline:
        return Verdict.no("the container's PID 1 already runs its program")
    if not (_state_dir(ctx) / "exec.fifo").exists():
        return Verdict.no("there is no exec.fifo: the container is not waiting for start")
    if (_paths(ctx)["out"] / "started").exists():
        return Verdict.no("/out/started exists: the program ran")
    if not kernel.new_namespaces(pid):
        return Verdict.no("the process has no namespaces of its own")
    return Verdict.ok("created: namespaces made, PID 1 is still kit, waiting at exec.fifo")


# --- 3. kit start ---


def start(ctx: StepContext) -> None:
    if _pid(ctx) is None or not (_state_dir(ctx) / "exec.fifo").exists():
        create(ctx)
    done = _kit(ctx, "start", ID)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    pid = int(_paths(ctx)["pid"].read_text())
    for _ in range(100):  # the program writes /out/started as its first act
        if (_paths(ctx)["out"] / "started").exists():
            break
        time.sleep(0.02)
    cmdline = (kernel.read_text(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
    ctx.show(
        Facts(
            "after kit start",
            [
                ("PID 1 now runs", cmdline),
                ("exec.fifo", "exists" if (_state_dir(ctx) / "exec.fifo").exists() else "gone"),
                ("state", json.loads(_kit(ctx, "state", ID).stdout)["status"]),
            ],
        )
    )


def check_start(ctx: StepContext) -> Verdict:
    pid = _pid(ctx)
    if pid is None:
        return Verdict.no("the container is not running")
    if (kernel.read_text(f"/proc/{pid}/cmdline") or "") != "sleep\x003600\x00":
        return Verdict.no("PID 1 does not run the program (sleep 3600) yet")
    if (_state_dir(ctx) / "exec.fifo").exists():
        return Verdict.no("exec.fifo still exists")
    if not (_paths(ctx)["out"] / "started").exists():
        return Verdict.no("/out/started was not written")
    return Verdict.ok("running: the program replaced kit's init; exec.fifo is gone")


# --- 4. runc and kit, one config.json ---


def twins(ctx: StepContext) -> None:
    paths = _paths(ctx)
    if not (paths["rootfs"] / "bin" / "sh").exists():
        bundle(ctx)
    twin = paths["twin"]
    if twin.exists():
        shutil.rmtree(twin)
    twin.mkdir()
    twin_spec = _spec(ctx, ["sh", "-c", REPORT], paths["out"])
    twin_spec.root.path = str(paths["rootfs"])  # runc wants an absolute path, not a symlink
    twin_spec.save(str(twin / "config.json"))
    runc = subprocess.run(
        [
            "runc",
            "--root",
            str(ctx.workspace / "runc-state"),
            "run",
            "--bundle",
            str(twin),
            "twin-runc",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    kit = _kit(ctx, "run", "--bundle", str(twin), "twin-kit", stdin=subprocess.DEVNULL)
    for name, done in (("runc", runc), ("kit", kit)):
        if done.returncode != 0:  # the check will fail: show why
            ctx.show(Output(f"{name} run exited {done.returncode}", done.stderr or done.stdout))
    (paths["out"] / "runc.txt").write_text(runc.stdout)
    (paths["out"] / "kit.txt").write_text(kit.stdout)
    rows = []
    for theirs, ours in zip(runc.stdout.splitlines(), kit.stdout.splitlines(), strict=False):
        rows.append(
            (
                theirs.split(":")[0].split()[0],
                f"runc: {theirs.split(':', 1)[-1].strip()}   kit: {ours.split(':', 1)[-1].strip()}",
            )
        )
    ctx.show(Facts("the same config.json: runc and kit", rows))


def check_twins(ctx: StepContext) -> Verdict:
    out = _paths(ctx)["out"]
    theirs, ours = kernel.read_text(out / "runc.txt"), kernel.read_text(out / "kit.txt")
    if not theirs or not ours:
        return Verdict.no("the reports of runc and kit are not both in out/")
    if theirs != ours:
        return Verdict.no("runc's and kit's containers differ")
    return Verdict.ok("identical: capabilities, no_new_privs, seccomp, hostname and mount flags")


# --- 5. podman drives kit ---


def _runroot_link(ctx: StepContext) -> Path:
    import hashlib

    target = _paths(ctx)["podman"] / "runroot"
    return Path("/tmp") / f"kit-l12-{hashlib.sha256(str(target).encode()).hexdigest()[:8]}"


def _short_runroot(ctx: StepContext) -> Path:
    """podman refuses a runroot path longer than 50 characters (its sockets live there): a
    short symlink in /tmp leads to the workspace's runroot; the step removes it afterwards."""
    target = _paths(ctx)["podman"] / "runroot"
    target.mkdir(parents=True, exist_ok=True)
    link = _runroot_link(ctx)
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    return link


def _podman(ctx: StepContext) -> tuple[PrivatePodman, Path]:
    """podman with a store of its own in the workspace, and kit as its runtime."""
    engine = PrivatePodman(_paths(ctx)["podman"], runroot=_short_runroot(ctx))
    kit_command = f"{sys.executable} -m kit"
    return engine, engine.kit_runtime(kit_command, _paths(ctx)["kit-root"])


def podman(ctx: StepContext) -> None:
    paths = _paths(ctx)
    if not (paths["rootfs"] / "bin" / "sh").exists():
        bundle(ctx)
    try:
        _podman_run(ctx, *_podman(ctx))
    finally:
        _runroot_link(ctx).unlink(missing_ok=True)  # also when podman failed


def _podman_run(ctx: StepContext, engine: PrivatePodman, runtime: Path) -> None:
    paths = _paths(ctx)
    base = paths["podman"]
    cli, env = engine.argv, engine.env
    (base / CALLS_LOG).unlink(missing_ok=True)
    (paths["out"] / "podman.txt").unlink(missing_ok=True)
    # The image: the bundle's root filesystem, built and saved by kit, pulled by podman.
    context = base / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir()
    with tarfile.open(context / "root.tar", "w") as tar:
        tar.add(paths["rootfs"], arcname=".")
    (context / "Kitfile").write_text('FROM scratch\nADD root.tar /\nCMD ["/bin/sh"]\n')
    _kit(ctx, "build", "-q", "-t", "lesson12:1", str(context))
    # podman names an image pulled from an OCI layout after the layout's path, and image names
    # must be lowercase: save it under a lowercase temporary path (KIT_ROOT may have capitals),
    # and remove that copy once podman has its own.
    # (mkdtemp's names may end in "_", which a reference's path component may not.)
    layout = Path(tempfile.gettempdir(), f"kit-lesson12-layout-{secrets.token_hex(4)}")
    layout.mkdir(mode=0o700)
    try:
        _kit(ctx, "save", "-o", str(layout / "oci"), "lesson12:1")
        pulled = subprocess.run(
            [*cli, "pull", "-q", f"oci:{layout / 'oci'}:1"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    if pulled.returncode != 0:
        raise KitError(
            f"podman could not pull the image kit saved (exit {pulled.returncode})",
            cause=pulled.stderr.strip() or "podman said nothing",
            fix="run `kit doctor`; podman needs overlay storage and its own tools (conmon)",
        )
    image = pulled.stdout.split()[-1]
    cgroups_before = podman_cgroups()
    run = subprocess.run(
        [
            *cli,
            "--runtime",
            str(runtime),
            "run",
            "--rm",
            "--network",
            "none",
            *ULIMITS,
            "-v",
            f"{paths['out']}:/out",
            image,
            "sh",
            "-c",
            "echo podman was here > /out/podman.txt; hostname",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    forget_podman_cgroups(cgroups_before)
    calls = "".join(f"kit {call}\n" for call in engine.calls())
    ctx.show(Output("what podman (through conmon) asked of kit", _short(calls)))
    ctx.show(Output("the container's output", run.stdout + run.stderr))


def _short(calls: str) -> str:
    lines = []
    for line in calls.splitlines():
        words = [w if len(w) < 40 else w[:12] + "…" for w in line.split()]
        lines.append(" ".join(words))
    return "\n".join(lines)


def check_podman(ctx: StepContext) -> Verdict:
    paths = _paths(ctx)
    if (kernel.read_text(paths["out"] / "podman.txt") or "").strip() != "podman was here":
        return Verdict.no("out/podman.txt was not written by a container")
    calls = (kernel.read_text(paths["podman"] / CALLS_LOG) or "").split()
    if "create" not in calls or "start" not in calls:
        return Verdict.no("kit was not asked to create and start the container")
    return Verdict.ok("podman's container ran through kit create + kit start (and delete)")


LESSON = Lesson(
    id="runtime-stack",
    number=12,
    title="The runtime stack",
    goals=(
        "An engine hands a runtime a bundle: config.json and a root filesystem",
        "create builds the container and stops before exec; start runs the program",
        "runc and kit read the same config.json and make the same container",
        "podman, a real engine, can drive kit in place of runc",
    ),
    package=__name__,
    requires=("root", "seccomp", "tool:runc", "tool:podman"),
    steps=(
        Step("bundle", "An OCI bundle", bundle, check_bundle),
        Step(
            "create",
            "kit create: everything but the program",
            create,
            check_create,
            question=Question(
                "`kit create` has returned. What is the container's PID 1 running?",
                ("the program from config.json", "kit itself, waiting", "nothing: no process yet"),
                1,
                "create runs every stage (namespaces, mounts, pivot_root, capabilities, "
                "seccomp) in the container's first process and stops it just before execve, "
                "reading a FIFO. Until `kit start` writes to it, PID 1 is still kit.",
            ),
        ),
        Step("start", "kit start: the program replaces kit", start, check_start),
        Step("runc", "One config.json, two runtimes", twins, check_twins),
        Step("podman", "podman drives kit", podman, check_podman),
    ),
)
