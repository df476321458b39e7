"""Lesson 8: Read-only roots and mount flags.

A container with ``--read-only`` tries to write to its image, to kit's /tmp, to a tmpfs and
to a bind-mounted directory of the lesson's workspace: only the image refuses (EROFS), since
a mount's flags are its own. A second container puts the three per-mount flags side by side
on three tmpfs mounts (noexec, nodev, nosuid), each shown refusing and, on a mount without the
flag, allowing. A third shows the /proc paths every container gets read-only or masked, next
to a container without them. The challenge: run a script stored on a noexec mount.

Each container writes what happened to a file in its own /tmp at start, then sleeps; checks
read that file through /proc/PID/root, and the containers' mount tables.
"""

from __future__ import annotations

import socket
import time

from kit import mounts
from kit.runtime.user_mounts import merge, parse_tmpfs, parse_volume
from kit.spec import Spec
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, MountList, Output

READ_ONLY, FLAGS, PROC, QUIZ = "read-only", "flags", "proc-paths", "noexec-quiz"
RESULTS = "/tmp/results"
DATA_DIR = "data"
ANSWER = "/tmp/hello.out"
MARKER = "hello from a noexec mount"

#: Try to write in each place; print "PLACE ok" or "PLACE <why not>".
TRY_WRITES = (
    "for d in /usr /etc /tmp /scratch /data; do "
    'if out=$( { touch "$d/.kit-written" && rm -f "$d/.kit-written"; } 2>&1 ); '
    'then echo "$d ok"; else echo "$d ${out##*: }"; fi; done'
)

#: The three flags on three tmpfs mounts: /locked has all three, /nosuid only nosuid, /open
#: none. Each mount gets a script, a device node and a setuid-root copy of `id`.
TRY_FLAGS = """\
for d in /locked /nosuid /open; do
  printf '#!/bin/sh\\necho ran\\n' > $d/run.sh; chmod 755 $d/run.sh
  if out=$( { $d/run.sh; } 2>&1 ); then echo "$d exec: $out"; else echo "$d exec: ${out##*: }"; fi
  mknod $d/null c 1 3
  if out=$( { echo x > $d/null; } 2>&1 ); then echo "$d device: opened"
  else echo "$d device: ${out##*: }"; fi
  cp /usr/bin/id $d/id; chmod 4755 $d/id
  if out=$( { setpriv --reuid=1000 --regid=1000 --clear-groups $d/id -u; } 2>&1 )
  then echo "$d setuid: euid $out"; else echo "$d setuid: ${out##*: }"; fi
done"""

TRY_PROC = """\
n=0; while IFS= read -r line; do n=$((n+1)); done < /proc/timer_list
echo "/proc/timer_list: $n lines"
if out=$( { echo kit-probe > /proc/sys/kernel/hostname; } 2>&1 )
then echo "/proc/sys/kernel/hostname: written, hostname now $(hostname)"
else echo "/proc/sys/kernel/hostname: ${out##*: }"; fi
set -- /sys/firmware/*
if [ "$1" = "/sys/firmware/*" ]; then echo "/sys/firmware: empty"
else echo "/sys/firmware: $# entries"; fi"""


def _kept(script: str) -> list[str]:
    """Run ``script`` once, record its output in RESULTS, then stay for checks and shells."""
    return ["sh", "-c", f"{{ {script}; }} > {RESULTS}.tmp 2>&1; mv {RESULTS}.tmp {RESULTS}; "
            "exec sleep infinity"]  # fmt: skip


def _recorded(ctx: StepContext, name: str) -> str | None:
    """What the kept container recorded in RESULTS, if it has finished writing it."""
    pid = ctx.pid(name)
    return None if pid is None else kernel.read_text(f"/proc/{pid}/root{RESULTS}")


def _results(ctx: StepContext, name: str) -> str:
    """What the kept container recorded (waiting up to 5 s for it to finish writing)."""
    for _ in range(250):
        text = _recorded(ctx, name)
        if text is not None:
            return text
        time.sleep(0.02)
    return ""


def _mounts_at(pid: int, points: tuple[str, ...]) -> list[mounts.Mount]:
    return [m for m in mounts.read(pid) if m.mount_point in points]


def _with_mounts(spec: Spec, *requests: str) -> Spec:
    """Add mounts written the way `kit run` takes them (``--tmpfs X``, ``-v A:B``)."""
    parsed = []
    for request in requests:
        kind, _, value = request.partition(" ")
        parsed.append(parse_tmpfs(value) if kind == "--tmpfs" else parse_volume(value))
    spec.mounts = merge(spec.mounts, parsed)
    return spec


# --- 1. a read-only root -----------------------------------------------------------------------


def _data(ctx: StepContext) -> str:
    directory = ctx.workspace / DATA_DIR
    directory.mkdir(exist_ok=True)
    return str(directory)


def read_only_root(ctx: StepContext) -> None:
    spec = _with_mounts(
        ctx.spec(_kept(TRY_WRITES), hostname="read-only"),
        "--tmpfs /scratch",
        f"-v {_data(ctx)}:/data",
    )
    spec.root.readonly = True
    box = ctx.start(READ_ONLY, spec)
    assert box.host_pid is not None
    ctx.show(Output("kit run --read-only --tmpfs /scratch -v WORKSPACE/data:/data ...: "
                    "touch in five places", _results(ctx, READ_ONLY)))  # fmt: skip
    ctx.show(
        MountList(
            "the same container's mounts",
            _mounts_at(box.host_pid, ("/", "/tmp", "/scratch", "/data")),
        )
    )
    # Break it: the same container without --read-only writes into the image (and cleans up).
    loose = _with_mounts(
        ctx.spec(["sh", "-c", TRY_WRITES], hostname="writable"),
        "--tmpfs /scratch",
        f"-v {_data(ctx)}:/data",
    )
    ctx.show(Output("without --read-only (the control)", ctx.run(loose).stdout.decode()))


def check_read_only_root(ctx: StepContext) -> Verdict:
    pid = ctx.pid(READ_ONLY)
    if pid is None:
        return Verdict.no("the read-only container is not running: run the step")
    table = mounts.read(pid)
    root, scratch = mounts.find(table, "/"), mounts.find(table, "/scratch")
    if root is None or not root.read_only:
        return Verdict.no("the container's / is mounted read-write")
    if scratch is None or scratch.read_only:
        return Verdict.no("the container has no writable tmpfs at /scratch")
    recorded = _recorded(ctx, READ_ONLY) or ""
    if "/usr Read-only file system" not in recorded or "/scratch ok" not in recorded:
        return Verdict.no(f"the writes did not go as expected: {recorded.strip()!r}")
    return Verdict.ok("/ is read-only (EROFS for /usr); /scratch, /tmp and /data took writes")


# --- 2. noexec, nodev, nosuid ------------------------------------------------------------------


def flags(ctx: StepContext) -> None:
    spec = _with_mounts(
        ctx.spec(_kept(TRY_FLAGS), hostname="flags"),
        "--tmpfs /locked",
        "--tmpfs /nosuid:exec,dev",
        "--tmpfs /open:exec,dev,suid",
    )
    # no_new_privs would stop the setuid test on every mount (lesson 9): off here, so that
    # only the mount flag decides.
    spec.process.no_new_privileges = False
    box = ctx.start(FLAGS, spec)
    assert box.host_pid is not None
    ctx.show(
        MountList("three tmpfs mounts", _mounts_at(box.host_pid, ("/locked", "/nosuid", "/open")))
    )
    ctx.show(
        Output("a script, a device node and a setuid-root program on each", _results(ctx, FLAGS))
    )


def check_flags(ctx: StepContext) -> Verdict:
    pid = ctx.pid(FLAGS)
    if pid is None:
        return Verdict.no("the container with the three tmpfs mounts is not running")
    table = mounts.read(pid)
    locked, open_ = mounts.find(table, "/locked"), mounts.find(table, "/open")
    if locked is None or not {"noexec", "nodev", "nosuid"} <= set(locked.options):
        return Verdict.no("/locked is not mounted noexec,nodev,nosuid")
    if open_ is None or {"noexec", "nodev", "nosuid"} & set(open_.options):
        return Verdict.no("/open still has a restricting flag")
    recorded = _recorded(ctx, FLAGS) or ""
    wanted = (
        "/locked exec: Permission denied",
        "/locked device: Permission denied",
        "/nosuid setuid: euid 1000",
        "/open exec: ran",
        "/open setuid: euid 0",
    )
    missing = [line for line in wanted if line not in recorded]
    if missing:
        return Verdict.no(f"the container did not record: {'; '.join(missing)}")
    return Verdict.ok("each flag refused on /locked and /nosuid, and /open allowed it all")


# --- 3. read-only and masked /proc paths -------------------------------------------------------


def proc_paths(ctx: StepContext) -> None:
    box = ctx.start(PROC, ctx.spec(_kept(TRY_PROC), hostname="proc-paths"))
    pid = box.host_pid
    assert pid is not None
    special = [
        m
        for m in mounts.read(pid)
        if m.mount_point.startswith("/proc/") or m.mount_point == "/sys/firmware"
    ]
    ctx.show(MountList("mounts on top of /proc and /sys", special))
    ctx.show(Output("reading and writing them", _results(ctx, PROC)))
    loose = ctx.spec(["sh", "-c", TRY_PROC], hostname="unconfined")
    loose.linux.masked_paths = []
    loose.linux.readonly_paths = []
    control = ctx.run(loose)
    ctx.show(Output("with --security-opt systempaths=unconfined (the control)",
                    control.stdout.decode()))  # fmt: skip
    ctx.show(Facts("the host, afterwards", [("hostname", socket.gethostname())]))


def check_proc_paths(ctx: StepContext) -> Verdict:
    pid = ctx.pid(PROC)
    if pid is None:
        return Verdict.no("the container is not running: run the step")
    table = mounts.read(pid)
    proc_sys = mounts.find(table, "/proc/sys")
    if proc_sys is None or not proc_sys.read_only:
        return Verdict.no("/proc/sys is not a read-only mount in the container")
    if mounts.find(table, "/proc/timer_list") is None:
        return Verdict.no("nothing is mounted over /proc/timer_list")
    seen = kernel.read_text(f"/proc/{pid}/root/proc/timer_list")
    if seen != "":
        return Verdict.no("the container's /proc/timer_list is readable")
    return Verdict.ok("/proc/sys is read-only and /proc/timer_list reads empty in the container")


# --- 4. challenge: a script on a noexec mount --------------------------------------------------

SETUP_QUIZ = (
    f"printf '#!/bin/sh\\necho {MARKER}\\n' > /work/hello.sh; chmod 755 /work/hello.sh; "
    "exec sleep infinity"
)


def noexec_quiz(ctx: StepContext) -> None:
    spec = _with_mounts(ctx.spec(["sh", "-c", SETUP_QUIZ], hostname="quiz"), "--tmpfs /work")
    spec.root.readonly = True
    box = ctx.start(QUIZ, spec)
    for _ in range(250):  # the container's program writes the script right after starting
        if box.host_pid and kernel.read_text(f"/proc/{box.host_pid}/root/work/hello.sh"):
            break
        time.sleep(0.02)
    ctx.say(
        "a read-only container is running with /work on a noexec tmpfs; /work/hello.sh is "
        f"executable but will not run. Open a shell (s), make it run without changing any "
        f"mount, and put what it prints into {ANSWER}"
    )


def check_noexec_quiz(ctx: StepContext) -> Verdict:
    pid = ctx.pid(QUIZ)
    if pid is None:
        return Verdict.no("the challenge's container is not running: run the step first")
    work = mounts.find(mounts.read(pid), "/work")
    if work is None or "noexec" not in work.options:
        return Verdict.no("/work is no longer a noexec mount: leave the mounts as they are")
    answer = kernel.read_text(f"/proc/{pid}/root{ANSWER}")
    if answer is None:
        return Verdict.no(f"there is no {ANSWER} yet")
    if MARKER not in answer:
        return Verdict.no(f"{ANSWER} does not hold what the script prints")
    return Verdict.ok("the script ran although /work is noexec: noexec stops execve, not sh")


LESSON = Lesson(
    id="mount-flags",
    number=8,
    title="Read-only roots and mount flags",
    goals=(
        "A read-only root filesystem with writable places on top of it",
        "noexec, nodev and nosuid: what each mount flag stops",
        "The /proc paths every container gets read-only or hidden",
        "What the flags do not stop",
    ),
    package=__name__,
    steps=(
        Step(
            "read-only-root",
            "A read-only root",
            read_only_root,
            check_read_only_root,
            question=Question(
                "A container runs with --read-only, --tmpfs /scratch and a bind mount at "
                "/data. Where can it create files?",
                (
                    "nowhere: the container is read-only",
                    "in /scratch, /data and /tmp: every mount has its own flags",
                    "everywhere: root ignores read-only",
                ),
                1,
                "--read-only remounts only the root filesystem's mount read-only. Mounts on "
                "top of it keep their own flags, and no privilege writes to a read-only mount.",
            ),
        ),
        Step(
            "flags",
            "noexec, nodev, nosuid",
            flags,
            check_flags,
            question=Question(
                "On a tmpfs mounted nosuid (but not noexec), user 1000 runs a setuid-root copy "
                "of `id -u`. What does it print?",
                ("0", "1000", "Permission denied"),
                1,
                "nosuid lets the program run but ignores its setuid bit: it runs as the user "
                "who started it.",
            ),
        ),
        Step(
            "proc-paths",
            "Read-only and masked /proc paths",
            proc_paths,
            check_proc_paths,
        ),
        Challenge(
            "noexec-quiz",
            "Challenge: run a script from a noexec mount",
            noexec_quiz,
            check_noexec_quiz,
            hints=(
                "noexec makes the kernel refuse execve() of files on that mount. Who else "
                "could read a script and do what it says?",
                "A shell reads a script as its input file: the script is never exec'd.",
                f"sh /work/hello.sh > {ANSWER}",
            ),
            solution=f"sh /work/hello.sh > {ANSWER}",
        ),
    ),
)
