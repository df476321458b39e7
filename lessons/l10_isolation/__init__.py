"""Lesson 10: isolation of identity and resources.

Three controls that do not change what a container *sees* but who it *is* and how much it may
*take*. A user namespace makes the container's root an ordinary user on the host (the host's
view comes from ``/proc/PID/status`` and the id map); a host file owned by root, bind-mounted
in, is then out of its reach, while a container without a user namespace writes it. Landlock
lets the container's program restrict itself to a few paths. cgroups hold the whole container
to a memory limit (a memory hog is killed by the OOM killer) and a process limit (a small fork
bomb stops). Each control is also shown off, harmlessly. The challenge: find from inside which
host user the container's root is.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from kit.cgroups import layout, limits
from kit.runtime.launcher import ExitStatus
from kit.security import userns
from kit.spec import LandlockRule, Mount, Spec
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, Namespaces, Output

GUEST = "guest"
LOCKED = "locked"
LIMITED = "limited"
BOMB = "bomb"
QUIZ = "quiz"

SHARED_DIR = "shared"
HOST_FILE = "host-file"
HOST_LINE = "written by the host"
WITH_USERNS = "written by root in a user namespace"
WITHOUT_USERNS = "written by root without a user namespace"

ATTEMPT_FILE = "/tmp/attempt"
ANSWER_FILE = "/tmp/host-uid"

MEMORY_LIMIT = 32 << 20
PIDS_LIMIT = 16
#: A shell holding 64 MB in a variable: twice the limit, nothing for the host.
MEMORY_HOG = 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo "survived, holding ${#x} bytes"'
#: 40 sleeping processes, and how many processes that made.
FORK_BOMB = "for i in $(seq 40); do sleep 1000 & done; echo $(ls -d /proc/[0-9]* | wc -l) processes"
#: The same in a subshell, so the container's shell survives the subshell's failed fork and
#: stays (exec sleep: no fork needed) for the check to look at.
KEPT_FORK_BOMB = "(for i in $(seq 40); do sleep 1000 & done) 2>/dev/null; exec sleep infinity"


def _spec(ctx: StepContext, args: list[str], *, hostname: str, user_ns: bool = False) -> Spec:
    spec = ctx.spec(args, hostname=hostname)
    if user_ns:
        userns.enable(spec)
    return spec


def _status_ids(pid: int) -> tuple[int, int] | None:
    """The effective uid and gid of a process, as the host sees them."""
    fields = kernel.status(pid)
    if "Uid" not in fields or "Gid" not in fields:
        return None
    # Uid: and Gid: list the real, effective, saved and filesystem ids, in that order.
    return int(fields["Uid"].split()[1]), int(fields["Gid"].split()[1])


def _root_maps_to(pid: int) -> int | None:
    """The host uid that uid 0 of ``pid``'s user namespace stands for (from its uid_map)."""
    for line in (kernel.read_text(f"/proc/{pid}/uid_map") or "").splitlines():
        inside, outside, count = (int(word) for word in line.split())
        if inside == 0 and count >= 1:
            return outside
    return None


# --- 1. root inside, somebody else outside -----------------------------------------------------


def user_namespace(ctx: StepContext) -> None:
    box = ctx.start(GUEST, _spec(ctx, ["sleep", "infinity"], hostname="guest", user_ns=True))
    pid = box.host_pid
    assert pid is not None
    inside = ctx.output_of(GUEST, "id; cat /proc/self/uid_map")
    ctx.show(Output("inside the container: id, and the uid map", inside))
    host = _status_ids(pid)
    ctx.show(
        Facts(
            "the same process, seen from the host (/proc/PID/status, /proc/PID/uid_map)",
            [
                ("host PID", str(pid)),
                ("effective uid, gid on the host", str(host)),
                ("uid 0 inside stands for", str(_root_maps_to(pid))),
            ],
        )
    )
    ctx.show(Namespaces("namespaces: host vs container", ctx.namespaces(GUEST), ctx.namespaces()))


def check_user_namespace(ctx: StepContext) -> Verdict:
    pid = ctx.pid(GUEST)
    if pid is None:
        return Verdict.no("no container with a user namespace is running: run the step")
    if "user" not in kernel.new_namespaces(pid):
        return Verdict.no("the container shares the host's user namespace")
    outside = _root_maps_to(pid)
    ids = _status_ids(pid)
    if outside is None or ids is None or outside == 0 or ids[0] != outside:
        return Verdict.no(f"root inside is uid {outside} outside: not an ordinary user")
    return Verdict.ok(f"root inside PID {pid} is uid {outside} on the host")


# --- 2. a file host root owns ------------------------------------------------------------------


def _shared(ctx: StepContext) -> Path:
    return ctx.workspace / SHARED_DIR


def _append(ctx: StepContext, line: str, *, user_ns: bool) -> ExitStatus:
    spec = _spec(
        ctx,
        ["sh", "-c", f'id -u; echo "{line}" >> /mnt/{HOST_FILE} && echo appended'],
        hostname="writer",
        user_ns=user_ns,
    )
    spec.mounts.append(Mount("/mnt", "bind", str(_shared(ctx)), ["rbind"]))
    return ctx.run(spec)


def host_file(ctx: StepContext) -> None:
    shared = _shared(ctx)
    shared.mkdir(mode=0o755, exist_ok=True)
    target = shared / HOST_FILE
    target.write_text(HOST_LINE + "\n")
    os.chmod(target, 0o644)
    info = target.stat()
    ctx.show(
        Facts(
            f"{target} on the host",
            [
                ("owner uid, gid", f"{info.st_uid}, {info.st_gid}"),
                ("mode", stat.filemode(info.st_mode)),
            ],
        )
    )
    for user_ns, line in ((True, WITH_USERNS), (False, WITHOUT_USERNS)):
        status = _append(ctx, line, user_ns=user_ns)
        title = "with a user namespace" if user_ns else "without one (the control)"
        shown = status.stdout.decode() + status.stderr.decode()
        ctx.show(Output(f"root appends to the bind-mounted file, {title}", shown))
    ctx.show(Output("the file on the host afterwards", target.read_text()))


def check_host_file(ctx: StepContext) -> Verdict:
    target = _shared(ctx) / HOST_FILE
    text = kernel.read_text(target)
    if text is None:
        return Verdict.no("the host file does not exist yet: run the step")
    if target.stat().st_uid != 0 and os.geteuid() == 0:
        return Verdict.no("the file does not belong to host root")
    if WITH_USERNS in text:
        return Verdict.no("root in a user namespace managed to write the host's file")
    if WITHOUT_USERNS not in text:
        return Verdict.no("the control (no user namespace) has not written the file")
    return Verdict.ok(
        "only the container without a user namespace could write the file host root owns"
    )


# --- 3. Landlock -------------------------------------------------------------------------------


def _landlock_rules(ctx: StepContext) -> list[LandlockRule]:
    """Programs and libraries readable and executable, /dev and /tmp writable; nothing else."""
    root = ctx.rootfs()
    rules = [
        LandlockRule(path, ["read", "execute"])
        for path in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32")
        if (root / path.lstrip("/")).exists()
    ]
    rules += [LandlockRule("/dev", ["read", "write"]), LandlockRule("/tmp", ["read", "write"])]
    return rules


ATTEMPT = f"cat /etc/hostname > {ATTEMPT_FILE} 2>&1; echo status $? >> {ATTEMPT_FILE}"


def landlock(ctx: StepContext) -> None:
    spec = _spec(ctx, ["sh", "-c", f"{ATTEMPT}; exec sleep infinity"], hostname="locked")
    spec.kit.landlock = _landlock_rules(ctx)
    box = ctx.start(LOCKED, spec)
    pid = box.host_pid
    assert pid is not None
    ctx.show(
        Facts(
            "the rules (everything else is denied)",
            [(rule.path, ", ".join(rule.access)) for rule in spec.kit.landlock],
        )
    )
    attempt = ""
    for _ in range(200):  # the program writes it right after starting
        attempt = kernel.read_text(f"/proc/{pid}/root{ATTEMPT_FILE}") or ""
        if "status" in attempt:
            break
        time.sleep(0.02)
    ctx.show(Output("`cat /etc/hostname` under Landlock", attempt))
    no_new_privs = str(kernel.status(pid).get("NoNewPrivs"))
    ctx.show(Facts("the process, from the host", [("NoNewPrivs", no_new_privs)]))
    control = ctx.run(_spec(ctx, ["sh", "-c", "cat /etc/hostname"], hostname="free"))
    ctx.show(Output("the same read without Landlock (the control)", control.stdout.decode()))


def check_landlock(ctx: StepContext) -> Verdict:
    pid = ctx.pid(LOCKED)
    if pid is None:
        return Verdict.no("no Landlock-restricted container is running: run the step")
    attempt = kernel.read_text(f"/proc/{pid}/root{ATTEMPT_FILE}") or ""
    if "status" not in attempt:
        return Verdict.no("the restricted program has not tried to read /etc/hostname yet")
    if "Permission denied" not in attempt or "status 0" in attempt:
        return Verdict.no("the restricted program could read /etc/hostname")
    if kernel.status(pid).get("NoNewPrivs") != "1":
        return Verdict.no("the restricted program runs without no_new_privs")
    return Verdict.ok("Landlock denied the read of /etc/hostname (no rule allows /etc)")


# --- 4. a memory limit -------------------------------------------------------------------------


def _cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> str | None:
    found = layout.read()
    directory = layout.directory_of(pid, controller, found)
    if directory is None:
        return None
    name = v2_name if found.version_for((controller,)) == 2 else v1_name
    text = kernel.read_text(os.path.join(directory, name))
    return text.strip() if text is not None else None


def memory(ctx: StepContext) -> None:
    for limited in (True, False):
        spec = _spec(ctx, ["sh", "-c", MEMORY_HOG], hostname="hog")
        if limited:
            limits.set_limits(spec, memory=MEMORY_LIMIT, memory_swap=MEMORY_LIMIT)
        status = ctx.run(spec)
        title = "with --memory 32m" if limited else "without a limit (the control)"
        ctx.show(
            Facts(
                f"a memory hog, {title}",
                [
                    ("exit status", str(status.code)),
                    ("OOMKilled", str(status.oom_killed)),
                    ("it printed", status.stdout.decode().strip() or "(nothing)"),
                ],
            )
        )
    spec = _spec(ctx, ["sh", "-c", INSIDE], hostname="limited")
    limits.set_limits(spec, memory=MEMORY_LIMIT, memory_swap=MEMORY_LIMIT)
    box = ctx.start(LIMITED, spec)
    assert box.host_pid is not None
    inside = ""
    for _ in range(200):  # the program writes it right after starting
        inside = kernel.read_text(f"/proc/{box.host_pid}/root{CGROUP_FILE}") or ""
        if inside:
            break
        time.sleep(0.02)
    ctx.show(
        Facts(
            "a kept container with the limit, seen from the host",
            [
                ("its memory cgroup", str(layout.directory_of(box.host_pid, "memory"))),
                ("the limit file says", str(_memory_limit(box.host_pid))),
                ("inside, /proc/self/cgroup says", inside.strip()),
            ],
        )
    )


#: The container's own view of its memory cgroup (the v1 line, or the single v2 line), kept
#: in a file: a shell entered from outside (nsenter) joins the namespaces but not the cgroup.
CGROUP_FILE = "/tmp/cgroup"
INSIDE = (
    f"(grep :memory: /proc/self/cgroup || grep ^0:: /proc/self/cgroup) > {CGROUP_FILE}; "
    "exec sleep infinity"
)


def _memory_limit(pid: int) -> str | None:
    return _cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")


def check_memory(ctx: StepContext) -> Verdict:
    pid = ctx.pid(LIMITED)
    if pid is None:
        return Verdict.no("no container with a memory limit is running: run the step")
    directory = layout.directory_of(pid, "memory")
    if directory is None or "/kit/" not in directory + "/":
        return Verdict.no("the container is not in a cgroup of its own")
    value = _memory_limit(pid)
    if value != str(MEMORY_LIMIT):
        return Verdict.no(f"its memory limit is {value}, not {MEMORY_LIMIT}")
    return Verdict.ok(f"the kernel holds {directory} to {MEMORY_LIMIT} bytes")


# --- 5. a process limit ------------------------------------------------------------------------


def pids(ctx: StepContext) -> None:
    control = ctx.run(_spec(ctx, ["sh", "-c", FORK_BOMB], hostname="free"))
    spec = _spec(ctx, ["sh", "-c", KEPT_FORK_BOMB], hostname="bomb")
    limits.set_limits(spec, pids=PIDS_LIMIT)
    box = ctx.start(BOMB, spec)
    pid = box.host_pid
    assert pid is not None
    for _ in range(200):  # until the bomb has gone off
        if _refused_forks(pid) > 0:
            break
        time.sleep(0.02)
    ctx.show(Output("a small fork bomb (40 sleeps) without a limit", control.stdout.decode()))
    ctx.show(
        Facts(
            f"the same with --pids-limit {PIDS_LIMIT}, from the host",
            [
                ("pids.max", str(_cgroup_file(pid, "pids", "pids.max", "pids.max"))),
                ("pids.current", str(_cgroup_file(pid, "pids", "pids.current", "pids.current"))),
                ("refused forks (pids.events)", str(_refused_forks(pid))),
            ],
        )
    )


def _refused_forks(pid: int) -> int:
    """``max N`` in pids.events: how many forks the limit refused."""
    for line in (_cgroup_file(pid, "pids", "pids.events", "pids.events") or "").splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "max":
            return int(words[1])
    return 0


def check_pids(ctx: StepContext) -> Verdict:
    pid = ctx.pid(BOMB)
    if pid is None:
        return Verdict.no("no container with a process limit is running: run the step")
    limit = _cgroup_file(pid, "pids", "pids.max", "pids.max")
    if limit != str(PIDS_LIMIT):
        return Verdict.no(f"its pids.max is {limit}, not {PIDS_LIMIT}")
    refused = _refused_forks(pid)
    if refused < 1:
        return Verdict.no("the kernel has not refused any fork in it yet")
    return Verdict.ok(f"the kernel refused {refused} fork(s) at the limit of {PIDS_LIMIT}")


# --- 6. challenge: who is root? ----------------------------------------------------------------


def who_is_root(ctx: StepContext) -> None:
    ctx.start(QUIZ, _spec(ctx, ["sleep", "infinity"], hostname="quiz", user_ns=True))
    ctx.say(
        "a container with a user namespace is running: open a shell in it (s), find out "
        f"which host uid its root is, and write the number to {ANSWER_FILE}"
    )


def check_who_is_root(ctx: StepContext) -> Verdict:
    found = ctx.answer(QUIZ, ANSWER_FILE)
    if isinstance(found, Verdict):
        return found
    pid, answer = found
    ids = _status_ids(pid)
    truth = ids[0] if ids else None
    if answer != str(truth):
        return Verdict.no(f"{ANSWER_FILE} says {answer!r}: that is not root's host uid")
    return Verdict.ok(f"right: the container's root is uid {truth} on the host")


LESSON = Lesson(
    id="isolation",
    number=10,
    title="Identity and resources",
    goals=(
        "User namespaces: root inside the container, an ordinary user on the host",
        "Why that root cannot write a host file that host root owns",
        "Landlock: a program that gives up access to every path but a few",
        "cgroups: memory and process limits the kernel enforces on the whole container",
    ),
    package=__name__,
    requires=("root", "userns", "landlock", "cgroup:memory", "cgroup:pids"),
    steps=(
        Step(
            "userns",
            "Root inside, somebody else outside",
            user_namespace,
            check_user_namespace,
            question=Question(
                "Inside the container, `id` says uid=0(root). Which uid does the host's kernel "
                "see for that process?",
                ("0: it is root everywhere", "the uid its id map names (here 65534)", "none"),
                1,
                "Every id inside a user namespace stands for an id outside, as the id map "
                "says; permission checks on host objects use the outside one.",
            ),
        ),
        Step(
            "host-file",
            "A file host root owns",
            host_file,
            check_host_file,
            question=Question(
                "Two containers run `echo ... >> file` as root on a bind-mounted file that host "
                "root owns (mode 0644). Only one has a user namespace. Which writes succeed?",
                ("both", "only the one with a user namespace", "only the one without"),
                2,
                "In the user namespace, root is nobody on the host: neither the file's owner "
                "nor privileged over it, since host root is not mapped into the namespace.",
            ),
        ),
        Step(
            "landlock",
            "Landlock: giving up paths",
            landlock,
            check_landlock,
            question=Question(
                "A process has restricted itself with Landlock to /usr, /dev and /tmp. What can "
                "it still do?",
                (
                    "read /etc/hostname, since it is root",
                    "lift the restriction again",
                    "use files it had opened before restricting itself",
                ),
                2,
                "Landlock checks paths when they are opened. Nobody, not even root, can lift "
                "a restriction; open file descriptors (stdin, stdout) keep working.",
            ),
        ),
        Step(
            "memory",
            "A memory limit",
            memory,
            check_memory,
            question=Question(
                "A container limited to 32 MiB tries to hold 64 MB. What happens?",
                (
                    "the allocation just fails",
                    "the kernel's OOM killer kills a process of the container",
                    "the host slows down while it swaps",
                ),
                1,
                "The limit counts every page the container's processes use; when nothing "
                "more can be reclaimed, the OOM killer ends the biggest one (SIGKILL: exit "
                "status 137), and kit records OOMKilled.",
            ),
        ),
        Step(
            "pids",
            "A process limit",
            pids,
            check_pids,
            question=Question(
                f"With --pids-limit {PIDS_LIMIT}, a shell starts 40 background processes. "
                "What stops it?",
                (
                    "the kernel refuses fork() with EAGAIN",
                    "the shell notices the limit",
                    "the OOM killer",
                ),
                0,
                "pids.max counts processes and threads of the whole cgroup; at the limit, "
                "fork and clone fail with EAGAIN, and pids.events counts each refusal.",
            ),
        ),
        Challenge(
            "who-is-root",
            "Challenge: who is root?",
            who_is_root,
            check_who_is_root,
            hints=(
                "The kernel publishes a process's id map in /proc: look at /proc/self/uid_map.",
                "Each line of uid_map is: first id inside, first id outside, how many.",
                f"read inside outside count < /proc/self/uid_map; echo $outside > {ANSWER_FILE}",
            ),
            solution=(
                f"read inside outside count < /proc/self/uid_map; echo $outside > {ANSWER_FILE}"
            ),
        ),
    ),
)
