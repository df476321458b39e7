"""Lesson 9: Privilege: capabilities, no_new_privs and seccomp.

Three controls over what root in a container may ask the kernel for. Capabilities: the
container's PID 1 keeps Docker's 14 of root's ~40 powers (read from its /proc/PID/status by
the host), and mknod/chown fail once their capability is dropped. no_new_privs: a setuid-root
program (a copy of the root filesystem's ``id``, in a directory of the workspace) makes user
1000 root only while the bit is off. seccomp: the BPF program kit compiles is shown, and
``unshare -U`` is refused by it. A probe matrix then runs every enforcement probe of
:mod:`kit.security.enforcement` with its control on and off (the "break it" toggle), next to
two kept containers with everything on and everything off. The challenge: decode a capability
set to find the one extra capability a container was given.

Probes run through ``kit run`` (a separate process, as a learner would type them); checks
read the kept containers' /proc/PID/status.
"""

from __future__ import annotations

from kit.linux.caps import CAP_NUMBERS, render_mask
from kit.security import bpf, enforcement
from kit.security.capabilities import DEFAULT_CAPABILITIES, container_capabilities
from kit.security.seccomp_default import resolved_default_profile
from kit.security.seccomp_filter import compile_profile
from kit.security.seccomp_profile import parse
from kit.spec import DeviceRule, Mount, Resources
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Challenge, Lesson, Question, Step, Verdict
from lessons.observe import Facts, Output

CAPS, NNP, FILTERED, SANDBOX, LOOSE, QUIZ = (
    "caps",
    "no-new-privs",
    "filtered",
    "sandbox",
    "loose",
    "quiz",
)
HELPER_DIR = "suid"
ANSWER = "/tmp/answer"
EXTRA = "CAP_NET_ADMIN"
DOCKER_14 = sorted(DEFAULT_CAPABILITIES, key=CAP_NUMBERS.__getitem__)


def _caps(fields: dict[str, str], key: str) -> list[str]:
    mask = int(fields.get(key, "0"), 16)
    return render_mask(mask).split("|") if mask else []


def _short(names: list[str]) -> str:
    return ", ".join(name[4:] for name in names) or "(none)"


def _run_probe(ctx: StepContext, key: str, **context: str) -> list[tuple[str, str]]:
    """Run one enforcement probe with its control on and off; rows for a Facts table."""
    probe = enforcement.probe(key)
    rows = []
    for enforced in (True, False):
        result = enforcement.run(probe, str(ctx.rootfs()), enforced=enforced, **context)
        flags = " ".join(probe.flags(enforced, **context)) or "(defaults)"
        label = "control on " if enforced else "control off"
        mark = "as expected" if result.as_expected else f"expected {result.expected}"
        rows.append((f"{label}  {flags}", f"{result.outcome}  ({mark})"))
    return rows


def _helper(ctx: StepContext) -> str:
    """A setuid-root copy of the root filesystem's `id`, in the workspace (see step 2)."""
    directory = ctx.workspace / HELPER_DIR
    return enforcement.prepare_setuid_helper(str(directory), str(ctx.rootfs() / "usr/bin/id"))


# --- 1. capabilities ---------------------------------------------------------------------------


def capabilities(ctx: StepContext) -> None:
    box = ctx.start(CAPS, ctx.spec(["sleep", "infinity"], hostname="caps"))
    inside = kernel.status(box.host_pid)
    ours = kernel.status("self")
    ctx.show(
        Facts(
            "capability sets of the container's PID 1 (/proc/PID/status, decoded)",
            [
                ("effective", _short(_caps(inside, "CapEff"))),
                ("bounding", _short(_caps(inside, "CapBnd"))),
                ("inheritable", _short(_caps(inside, "CapInh"))),
                ("ambient", _short(_caps(inside, "CapAmb"))),
                ("kit itself (host root)", f"{len(_caps(ours, 'CapEff'))} capabilities"),
            ],
        )
    )
    ctx.show(Facts("mknod /tmp/kit-probe c 1 3", _run_probe(ctx, "mknod")))
    ctx.show(Facts("chown 1000 on a file root created", _run_probe(ctx, "chown")))


def check_capabilities(ctx: StepContext) -> Verdict:
    pid = ctx.pid(CAPS)
    if pid is None:
        return Verdict.no("the container is not running: run the step")
    fields = kernel.status(pid)
    bounding = _caps(fields, "CapBnd")
    if bounding != DOCKER_14:
        return Verdict.no(f"its bounding set is {_short(bounding)}, not Docker's 14")
    if _caps(fields, "CapInh") or _caps(fields, "CapAmb"):
        return Verdict.no("its inheritable or ambient set is not empty")
    return Verdict.ok(f"PID {pid} holds exactly Docker's 14 capabilities, none inheritable")


# --- 2. no_new_privs ---------------------------------------------------------------------------


def no_new_privs(ctx: StepContext) -> None:
    helper = _helper(ctx)
    spec = ctx.spec(["sleep", "infinity"], hostname="nnp")
    spec.process.user.uid = spec.process.user.gid = 1000
    spec.mounts.append(Mount("/kit-suid", "bind", helper, ["rbind", "ro"]))
    box = ctx.start(NNP, spec)
    fields = kernel.status(box.host_pid)
    ctx.show(
        Facts(
            "the kept container's PID 1",
            [("Uid", fields.get("Uid", "?")), ("NoNewPrivs", fields.get("NoNewPrivs", "?"))],
        )
    )
    ctx.show(
        Facts(
            "user 1000 runs a setuid-root copy of `id -u`",
            _run_probe(ctx, "setuid", helper_dir=helper),
        )
    )


def check_no_new_privs(ctx: StepContext) -> Verdict:
    pid = ctx.pid(NNP)
    if pid is None:
        return Verdict.no("the container is not running: run the step")
    fields = kernel.status(pid)
    if fields.get("NoNewPrivs") != "1":
        return Verdict.no("its PID 1 runs without no_new_privs")
    if fields.get("Uid", "").split()[:1] != ["1000"]:
        return Verdict.no("its PID 1 does not run as user 1000")
    return Verdict.ok(f"PID {pid} runs as user 1000 with no_new_privs set")


# --- 3. seccomp --------------------------------------------------------------------------------


def seccomp(ctx: StepContext) -> None:
    profile = parse(resolved_default_profile(list(DEFAULT_CAPABILITIES)))
    program = compile_profile(profile)
    lines = bpf.disassemble(program)
    ctx.show(
        Output(
            f"kit's default filter: {len(program)} instructions, the first 14 "
            "(`kit seccomp show` prints all)",
            "\n".join(lines[:14]),
        )
    )
    box = ctx.start(FILTERED, ctx.spec(["sleep", "infinity"], hostname="filtered"))
    fields = kernel.status(box.host_pid)
    ctx.show(
        Facts(
            "the kept container's PID 1",
            [
                ("Seccomp", fields.get("Seccomp", "?")),
                ("Seccomp_filters", fields.get("Seccomp_filters", "?")),
            ],
        )
    )
    ctx.show(Facts("unshare -U true (a new user namespace)", _run_probe(ctx, "seccomp-unshare")))


def check_seccomp(ctx: StepContext) -> Verdict:
    pid = ctx.pid(FILTERED)
    if pid is None:
        return Verdict.no("the container is not running: run the step")
    fields = kernel.status(pid)
    if fields.get("Seccomp") != "2":
        return Verdict.no(f"its seccomp mode is {fields.get('Seccomp')}, not 2 (filter)")
    return Verdict.ok(f"PID {pid} runs under {fields.get('Seccomp_filters')} seccomp filter(s)")


# --- 4. the probe matrix -----------------------------------------------------------------------


def matrix(ctx: StepContext) -> None:
    helper = _helper(ctx)
    rows = []
    for probe in enforcement.PROBES:
        on = enforcement.run(probe, str(ctx.rootfs()), enforced=True, helper_dir=helper)
        off = enforcement.run(probe, str(ctx.rootfs()), enforced=False, helper_dir=helper)
        ok = on.as_expected and off.as_expected
        unexpected = "" if ok else "  (unexpected!)"
        rows.append((probe.title, f"on: {on.outcome}  off: {off.outcome}{unexpected}"))
        rows.append(("", f"off means: {probe.consequence}"))
    ctx.show(Facts("every probe, control on and off", rows))
    ctx.start(SANDBOX, ctx.spec(["sleep", "infinity"], hostname="sandbox"))
    loose = ctx.spec(["sleep", "infinity"], hostname="loose")
    # Everything kit itself holds (--cap-add ALL), and every other control off.
    loose.process.capabilities = container_capabilities(_caps(kernel.status("self"), "CapBnd"))
    loose.process.no_new_privileges = False
    loose.linux.seccomp = None
    loose.linux.masked_paths = []
    loose.linux.readonly_paths = []
    loose.linux.resources = Resources(devices=[DeviceRule(allow=True, access="rwm")])
    ctx.start(LOOSE, loose)
    ctx.show(
        Facts(
            "two kept containers: everything on, everything off",
            [(name, _summary(kernel.status(ctx.pid(name)))) for name in (SANDBOX, LOOSE)],
        )
    )


def _summary(fields: dict[str, str]) -> str:
    return (
        f"{len(_caps(fields, 'CapBnd'))} capabilities, NoNewPrivs {fields.get('NoNewPrivs')}, "
        f"Seccomp {fields.get('Seccomp')}"
    )


def check_matrix(ctx: StepContext) -> Verdict:
    sandbox, loose = kernel.status(ctx.pid(SANDBOX)), kernel.status(ctx.pid(LOOSE))
    if not sandbox or not loose:
        return Verdict.no("the two containers of the matrix are not running: run the step")
    if (sandbox.get("Seccomp"), sandbox.get("NoNewPrivs")) != ("2", "1"):
        return Verdict.no("the sandbox is missing seccomp or no_new_privs")
    if _caps(sandbox, "CapBnd") != DOCKER_14:
        return Verdict.no("the sandbox does not have exactly Docker's 14 capabilities")
    if (loose.get("Seccomp"), loose.get("NoNewPrivs")) != ("0", "0"):
        return Verdict.no("the loose container still has seccomp or no_new_privs")
    if "CAP_SYS_ADMIN" not in _caps(loose, "CapBnd"):
        return Verdict.no("the loose container lacks CAP_SYS_ADMIN")
    return Verdict.ok("one container with every control, one with none, side by side")


# --- 5. challenge: the extra capability --------------------------------------------------------


def extra_capability(ctx: StepContext) -> None:
    spec = ctx.spec(["sleep", "infinity"], hostname="quiz")
    spec.process.capabilities = container_capabilities([*DEFAULT_CAPABILITIES, EXTRA])
    ctx.start(QUIZ, spec)
    ctx.say(
        "this container got one capability more than Docker's 14. Open a shell (s), find "
        f"out which from its PID 1's /proc/1/status, and write its name to {ANSWER}"
    )


def check_extra_capability(ctx: StepContext) -> Verdict:
    found = ctx.answer(QUIZ, ANSWER)
    if isinstance(found, Verdict):
        return found
    pid, answer = found
    extra = [c for c in _caps(kernel.status(pid), "CapEff") if c not in DEFAULT_CAPABILITIES]
    given = answer.upper()
    if not given.startswith("CAP_"):
        given = "CAP_" + given
    if [given] != extra:
        return Verdict.no(f"{ANSWER} says {answer!r}: that is not the extra capability")
    return Verdict.ok(f"right: {extra[0]} (bit {CAP_NUMBERS[extra[0]]} of CapEff)")


LESSON = Lesson(
    id="privilege",
    number=9,
    title="Privilege: capabilities, no_new_privs, seccomp",
    goals=(
        "Root's power comes in capabilities; a container keeps a few",
        "The five capability sets, and which ones survive execve",
        "no_new_privs: setuid programs stop making anyone root",
        "seccomp: a BPF program that judges every system call",
        "Every control on and off, side by side",
    ),
    package=__name__,
    requires=("root", "seccomp"),
    steps=(
        Step(
            "capabilities",
            "Root, cut into capabilities",
            capabilities,
            check_capabilities,
            question=Question(
                "Root in a container started with --cap-drop MKNOD runs `mknod /tmp/x c 1 3`. "
                "What happens?",
                (
                    "it works: root may do anything",
                    "EPERM: creating device nodes needs CAP_MKNOD",
                    "EROFS: /tmp is read-only",
                ),
                1,
                "The kernel checks the capability, not the uid: without CAP_MKNOD in its "
                "effective set even uid 0 is refused.",
            ),
        ),
        Step(
            "no-new-privs",
            "no_new_privs and setuid programs",
            no_new_privs,
            check_no_new_privs,
            question=Question(
                "User 1000 runs a setuid-root program in a container with no_new_privs "
                "set. Which effective uid does the program get?",
                ("0", "1000", "it does not start"),
                1,
                "With no_new_privs, execve ignores setuid and setgid bits (and file "
                "capabilities): the program runs, as the user who started it.",
            ),
        ),
        Step(
            "seccomp",
            "seccomp: a filter on every system call",
            seccomp,
            check_seccomp,
            question=Question(
                "Root (without CAP_SYS_ADMIN) runs `unshare -U`, which needs no capability "
                "at all. Under kit's default seccomp profile, what happens?",
                (
                    "a new user namespace is created",
                    "EPERM, before the kernel even looks at the request",
                    "the process is killed",
                ),
                1,
                "The profile allows unshare only with CAP_SYS_ADMIN; any other call not on "
                "the allow-list is answered with the default action, EPERM.",
            ),
        ),
        Step("matrix", "The probe matrix", matrix, check_matrix),
        Challenge(
            "extra-capability",
            "Challenge: the extra capability",
            extra_capability,
            check_extra_capability,
            hints=(
                "grep Cap /proc/1/status shows each set as a hexadecimal bit mask.",
                "Docker's 14 make CapEff 00000000a80425fb; subtract that and see which bit "
                "is left: bit N is capability number N (capabilities(7) lists them).",
                f"The extra bit is 0x1000, bit 12: CAP_NET_ADMIN. echo CAP_NET_ADMIN > {ANSWER}",
            ),
            solution=f"echo CAP_NET_ADMIN > {ANSWER}",
        ),
    ),
)
