"""Lesson 2: building a root filesystem from scratch.

The learner's root filesystem grows in the lesson's scratch directory: first a lone copy of the
host's shell, which the kernel refuses to run (ENOENT: its loader is missing; kit.elf shows
the PT_INTERP header that names it), then the loader and the libraries (kit.rootfs does what
``ldd`` does), then a busybox root as the static alternative. Finally a process is chrooted
into the hand-made root, and a second one shows, harmlessly, why chroot alone is not isolation:
it climbs back out and lists the host's ``/`` (it only reads, and only in a child process).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kit import elf
from kit.rootfs import build_rootfs, runnable_problems
from lessons import kernel
from lessons.context import StepContext
from lessons.model import Lesson, Question, Step, Verdict
from lessons.observe import Facts, Namespaces, Output, Tree

HAND = "hand"
BUSYBOX = "busybox"
CHROOTED = "chrooted"
ESCAPEE = "escapee"


def _hand(ctx: StepContext) -> Path:
    return ctx.workspace / HAND


def _elf_facts(path: Path, title: str) -> Facts:
    info = elf.inspect(path)
    return Facts(
        title,
        [
            ("file", str(path)),
            ("machine", f"{info.machine}, {info.bits}-bit, {info.type}"),
            ("PT_INTERP (the loader)", info.interpreter or "none: statically linked"),
            ("DT_NEEDED (libraries)", ", ".join(info.needed) or "none"),
        ],
    )


# --- 1. copy the shell alone ------------------------------------------------------------------


def copy_shell(ctx: StepContext) -> None:
    hand = _hand(ctx)
    if hand.exists():
        shutil.rmtree(hand)
    (hand / "bin").mkdir(parents=True)
    host_shell = os.path.realpath("/bin/sh")
    shutil.copy2(host_shell, hand / "bin" / "sh")
    ctx.say(f"copied {host_shell} (what /bin/sh points to on this host) to {hand}/bin/sh")
    ctx.show(Tree.of("the new root filesystem", hand, depth=3, name=f"{HAND}/"))
    ctx.show(_elf_facts(hand / "bin" / "sh", "the ELF header of bin/sh (kit.elf)"))
    status = ctx.run(ctx.spec(["/bin/sh", "-c", "echo hello"], rootfs=hand))
    said = str(status.error) if status.error else status.stdout.decode(errors="replace")
    ctx.show(Output(f"running /bin/sh in it: exit status {status.code}", said))


def check_copy_shell(ctx: StepContext) -> Verdict:
    hand = _hand(ctx)
    shell = hand / "bin" / "sh"
    if not shell.is_file():
        return Verdict.no(f"there is no {HAND}/bin/sh yet")
    if not elf.is_elf(shell) or elf.interpreter(shell) is None:
        return Verdict.no(f"{HAND}/bin/sh is not a dynamically linked program")
    problems = runnable_problems(hand, "/bin/sh")
    if not problems:
        return Verdict.no("the loader is already there: this step is about its absence")
    return Verdict.ok(problems[0])


# --- 2. the loader and the libraries ----------------------------------------------------------


def add_libraries(ctx: StepContext) -> None:
    hand = _hand(ctx)
    # kit's builder does what we would do by hand: copy the program (mirroring the host's
    # symlinks), its PT_INTERP loader, and every library the loader says it would load.
    report = build_rootfs(hand, "host", programs=["sh"], replace=True)
    shell = next(p for p in report.programs if p.name == "sh")
    ctx.show(
        Facts(
            "what sh needs (asked from the loader, as ldd does)",
            [("program", shell.real_path), ("loader", shell.interpreter or "none")]
            + [("library", lib) for lib in shell.libraries if lib != shell.interpreter],
        )
    )
    ctx.show(Tree.of("the root filesystem now", hand / "usr", depth=3, name=f"{HAND}/usr/"))
    status = ctx.run(
        ctx.spec(
            ["/bin/sh", "-c", "echo hello from a root filesystem we built; echo /*"], rootfs=hand
        )
    )
    if status.error is not None:
        raise status.error
    ctx.show(Output(f"running /bin/sh in it: exit status {status.code}", status.stdout.decode()))


def check_add_libraries(ctx: StepContext) -> Verdict:
    hand = _hand(ctx)
    if not (hand / "bin" / "sh").exists():
        return Verdict.no(f"there is no {HAND}/bin/sh yet")
    problems = runnable_problems(hand, "/bin/sh")
    if problems:
        return Verdict.no(problems[0])
    loader = elf.interpreter(os.path.realpath("/bin/sh"))
    return Verdict.ok(f"bin/sh and its loader {loader} are both inside {HAND}/")


# --- 3. busybox -------------------------------------------------------------------------------


def busybox(ctx: StepContext) -> None:
    dest = ctx.workspace / BUSYBOX
    report = build_rootfs(dest, "busybox", replace=True)
    program = report.programs[0] if report.programs else None
    ctx.show(_elf_facts(dest / "bin" / "busybox", "the ELF header of busybox"))
    if program is not None:
        ctx.show(Facts("busybox", [("applets (symlinks)", str(len(program.links)))]))
    ctx.show(Tree.of("the busybox root filesystem", dest, depth=1, name=f"{BUSYBOX}/"))
    status = ctx.run(ctx.spec(["/bin/sh", "-c", "ls -l /bin | head -4"], rootfs=dest))
    if status.error is not None:
        raise status.error
    ctx.show(Output("ls -l /bin, inside", status.stdout.decode()))


def check_busybox(ctx: StepContext) -> Verdict:
    dest = ctx.workspace / BUSYBOX
    binary = dest / "bin" / "busybox"
    if not binary.is_file():
        return Verdict.no(f"there is no {BUSYBOX}/bin/busybox yet")
    if not elf.is_static(binary):
        return Verdict.no("busybox is not statically linked")
    problems = runnable_problems(dest, "/bin/sh")
    if problems:
        return Verdict.no(problems[0])
    return Verdict.ok("one static binary, no loader, no libraries: it runs")


# --- 4. chroot --------------------------------------------------------------------------------


def chroot(ctx: StepContext) -> None:
    hand = _hand(ctx)
    result = ctx.experiment("kit.probes.escape:chroot_only", keep=CHROOTED, root=str(hand))
    pid = ctx.pid(CHROOTED)
    ctx.show(Output("`/` as the chrooted process sees it", "  ".join(result["listing"])))
    ctx.show(
        Facts(
            "the chrooted process, from the host",
            [("PID", str(pid)), ("/proc/PID/root ->", os.readlink(f"/proc/{pid}/root"))],
        )
    )
    ctx.show(
        Namespaces(
            "namespaces: chrooted process vs host", ctx.namespaces(CHROOTED), ctx.namespaces()
        )
    )


def check_chroot(ctx: StepContext) -> Verdict:
    pid = ctx.pid(CHROOTED)
    if pid is None:
        return Verdict.no("no chrooted process is running")
    root = os.readlink(f"/proc/{pid}/root")
    if root != str(_hand(ctx).resolve()):
        return Verdict.no(f"the process's root is {root}, not {HAND}/")
    new = kernel.new_namespaces(pid)
    if new:
        return Verdict.no(
            f"the process has new namespaces ({', '.join(sorted(new))}): not a plain chroot"
        )
    return Verdict.ok(f"PID {pid}'s root is {root}, in every one of the host's namespaces")


# --- 5. the escape ----------------------------------------------------------------------------


def escape(ctx: StepContext) -> None:
    hand = _hand(ctx)
    result = ctx.experiment(
        "kit.probes.escape:chroot_and_escape", keep=ESCAPEE, shell=False, root=str(hand)
    )
    pid = ctx.pid(ESCAPEE)
    ctx.show(Output("1. `/` after chroot", "  ".join(result["inside"]["listing"])))
    ctx.show(
        Output(
            '2. `/` after chroot(subdir), chdir("..") x24, chroot(".")',
            "  ".join(result["escaped"]["listing"]),
        )
    )
    ctx.show(
        Facts(
            "where the escapee's root is now",
            [
                ("/proc/PID/root ->", os.readlink(f"/proc/{pid}/root")),
                ("its / identity", str(tuple(result["escaped"]["root"]))),
                ("the host's / identity", str(kernel.host_root())),
            ],
        )
    )


def check_escape(ctx: StepContext) -> Verdict:
    pid = ctx.pid(ESCAPEE)
    if pid is None:
        return Verdict.no("no escape attempt has run")
    if kernel.root_of(pid) != kernel.host_root():
        return Verdict.no("the escapee's root is not the host's /")
    return Verdict.ok(f"PID {pid} went into the chroot and its root is the host's / again")


LESSON = Lesson(
    id="rootfs",
    number=2,
    title="Building a root filesystem from scratch",
    goals=(
        "A root filesystem is just a directory whose programs can run from inside it",
        "Why exec fails with ENOENT when the program is there but its loader is not",
        "busybox: one static binary, no loader, no libraries",
        "chroot changes where / starts, and why that alone is not isolation",
    ),
    package=__name__,
    steps=(
        Step(
            "copy-shell",
            "Copy a shell",
            copy_shell,
            check_copy_shell,
            question=Question(
                'bin/sh is in the new root and is executable. What will execve("/bin/sh") '
                "answer inside it?",
                (
                    "it runs",
                    "EACCES (permission denied)",
                    "ENOENT (no such file)",
                    "ENOEXEC (bad format)",
                ),
                2,
                "The kernel reads PT_INTERP from the program's header and opens that loader "
                "first, inside the root. It is missing, so execve fails with ENOENT, though "
                "the program itself is right there.",
            ),
        ),
        Step(
            "add-libraries", "Add the loader and the libraries", add_libraries, check_add_libraries
        ),
        Step("busybox", "One static binary instead", busybox, check_busybox),
        Step(
            "chroot",
            "chroot: a different /",
            chroot,
            check_chroot,
            question=Question(
                "A process chroots into the new root. Which namespaces does that give it?",
                ("new mount and PID namespaces", "a new mount namespace only", "none"),
                2,
                "chroot(2) changes one attribute of one process, its root directory. It "
                "creates no namespace: mounts, processes, network and hostname are the host's.",
            ),
        ),
        Step(
            "escape",
            "Why chroot is not isolation",
            escape,
            check_escape,
            question=Question(
                "The chrooted process (root, CAP_SYS_CHROOT) chroots into a subdirectory, then "
                'calls chdir("..") 24 times and chroot("."). Where is its root?',
                ("still the new root filesystem", "the host's /", "the subdirectory"),
                1,
                'chroot does not move the current directory, and ".." only stops at the '
                "process's own root. With the root below it, the climb never meets it and ends "
                "at the top of the mount namespace: the host's /.",
            ),
        ),
    ),
)
