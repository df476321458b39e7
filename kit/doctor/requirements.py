"""What a lesson needs, by name, and whether this machine has it.

Each lesson declares the requirement keys it needs (``requires=("root", "cgroup:memory")``);
the lesson framework asks :func:`assess` whether they are met here, and shows the learner
what blocks the lesson and the exact fix, or how the lesson will differ on this machine (the
cgroup files it meets on v1 and on v2). The answers come from the doctor's checks, run once
(:meth:`Facts.gather`) and reused for every lesson.

Keys (``kit doctor --requirements`` lists them with this machine's answers):

======================  ==================================================================
``containers``          kit can start a container at all (no doctor check failed)
``root``                real root: the host's cgroups, device nodes, trusted.* xattrs, runc
``userns``              this user can make a user namespace and mount inside it
``userns:unprivileged`` an ordinary user can (what a rootless student gets)
``subids``              subordinate uid/gid ranges, for mapping many users (rootless)
``overlay``             overlayfs mounts work (image and layer lessons)
``overlay:userxattr``   overlay marks in user.* xattrs (rootless overlays)
``overlay:lowerdir+``   layers added one by one with the new mount API (Linux 6.8)
``cgroup:CONTROLLER``   this user can set limits with memory, pids or cpu
``cgroup:v2``           the unified cgroup v2 tree (subtree_control, memory.events)
``namespace:KIND``      a namespace type: mount pid uts ipc network cgroup user time
``seccomp``             seccomp filters with the ERRNO and KILL_PROCESS actions
``landlock[:ABI]``      Landlock, at least ABI version 1 (or the given one)
``tool:NAME``           a program: busybox (static), runc, umoci, skopeo, podman, tmux ...
``registry:local``      a registry on localhost:5000, so pull lessons work offline
======================  ==================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from kit.doctor.check import Check
from kit.doctor.checks import can_run_containers, explain_blockers, run_checks
from kit.doctor.checks.cgroups import lesson_changes
from kit.doctor.distro import CONTAINER_FIX, Host
from kit.doctor.parsing import LESSON_CONTROLLERS, CgroupLayout
from kit.doctor.probes import NAMESPACE_KINDS
from kit.doctor.readers import which
from kit.errors import KitError

#: Where the lab's local registry listens (scripts/lab-setup.sh --registry starts it);
#: ``KIT_REGISTRY=host:port`` points elsewhere.
LOCAL_REGISTRY = "localhost:5000"


@dataclass(frozen=True)
class Outcome:
    """Whether one requirement is met here: what was found, the fix, and a note on how
    lessons differ on this machine even when it is met."""

    met: bool
    found: str
    fix: str = ""
    note: str = ""


@dataclass(frozen=True)
class Requirement:
    """A named need of lessons: what it is, why lessons need it, which checks decide it."""

    key: str
    title: str
    why: str
    checks: tuple[str, ...]
    decide: Callable[[Facts], Outcome]


@dataclass(frozen=True)
class Unmet:
    """A requirement a lesson has that this machine does not meet, and the fix."""

    key: str
    title: str
    found: str
    fix: str


@dataclass(frozen=True)
class Assessment:
    """The answer to "can this lesson run here, and if not, why and what to do?"."""

    keys: tuple[str, ...]
    unmet: tuple[Unmet, ...]
    notes: tuple[str, ...]

    @property
    def runnable(self) -> bool:
        return not self.unmet

    def explain(self) -> str:
        """Plain text: what blocks the lesson and the fix, then how it differs here."""
        if self.runnable:
            lines = ["Everything this lesson needs is here."]
        else:
            lines = ["This lesson cannot run here yet:"]
            for unmet in self.unmet:
                lines.append(f"- {unmet.title} ({unmet.key}): {unmet.found}.")
                if unmet.fix:
                    lines.append(f"  Fix: {unmet.fix}")
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "runnable": self.runnable,
            "unmet": [asdict(u) for u in self.unmet],
            "notes": list(self.notes),
        }


class Facts:
    """The doctor's checks on one machine, by name, and the host for fix commands."""

    def __init__(self, checks: list[Check], host: Host | None = None) -> None:
        self.checks = list(checks)
        self.by_name = {check.name: check for check in self.checks}
        self.host = host or Host.detect()
        self._outcomes: dict[str, Outcome] = {}

    @classmethod
    def gather(cls) -> Facts:
        """Run every check on this machine (about a second); reuse the result for all lessons."""
        return cls(run_checks())

    def data(self, name: str) -> dict[str, Any]:
        check = self.by_name.get(name)
        return check.data if check else {}

    def fix_of(self, name: str) -> str:
        check = self.by_name.get(name)
        return check.fix if check else ""

    def outcome(self, key: str) -> Outcome:
        """Whether requirement ``key`` is met here (cached)."""
        if key not in self._outcomes:
            self._outcomes[key] = requirement(key).decide(self)
        return self._outcomes[key]

    def assess(self, keys: Iterable[str]) -> Assessment:
        """Can a lesson needing ``keys`` run here? Unknown keys raise a KitError (a typo in a
        lesson must not pass silently)."""
        keys = tuple(dict.fromkeys(keys))
        unknown_keys = unknown(keys)
        if unknown_keys:
            raise KitError(
                f"unknown lesson requirement(s): {', '.join(unknown_keys)}",
                cause="a lesson's `requires` names a key kit.doctor.requirements does not know",
                fix=f"use one of: {', '.join(sorted(REQUIREMENTS))}, cgroup:CONTROLLER, "
                "namespace:KIND, landlock:ABI, tool:NAME",
            )
        unmet: list[Unmet] = []
        notes: list[str] = []
        if "containers" not in keys and not can_run_containers(self.checks):
            keys = ("containers", *keys)  # every lesson starts containers
        for key in keys:
            outcome = self.outcome(key)
            if not outcome.met:
                unmet.append(Unmet(key, requirement(key).title, outcome.found, outcome.fix))
            elif outcome.note and outcome.note not in notes:
                notes.append(outcome.note)
        return Assessment(keys, tuple(unmet), tuple(notes))


def assess(keys: Iterable[str], facts: Facts | None = None) -> Assessment:
    """Can a lesson needing ``keys`` run on this machine? Pass ``facts`` to reuse checks."""
    return (facts or Facts.gather()).assess(keys)


# ----------------------------------------------------------------------------------------------
# The decisions, one per requirement
# ----------------------------------------------------------------------------------------------


def _containers(facts: Facts) -> Outcome:
    if can_run_containers(facts.checks):
        return Outcome(True, "kit can start containers here")
    failed = [c for c in facts.checks if c.status == "fail"]
    fixes = list(dict.fromkeys(c.fix for c in failed if c.fix))
    return Outcome(
        False,
        "; ".join(f"{c.name}: {c.detail}" for c in failed),
        "; ".join(fixes) or explain_blockers(facts.checks),
    )


def _root(facts: Facts) -> Outcome:
    data = facts.data("privileges")
    if data.get("euid") == 0 and data.get("cap_sys_admin"):
        return Outcome(True, "running as root with CAP_SYS_ADMIN")
    if data.get("euid") == 0:
        return Outcome(False, "running as root without CAP_SYS_ADMIN", CONTAINER_FIX)
    return Outcome(
        False,
        f"running as uid {data.get('euid')} (rootless)",
        f"run the tutorial as root: {facts.host.as_root('kit-tutorial')}",
    )


def _userns(unprivileged: bool) -> Callable[[Facts], Outcome]:
    def decide(facts: Facts) -> Outcome:
        data = facts.data("user namespaces")
        as_root = facts.data("privileges").get("euid") == 0
        field = "unprivileged" if (unprivileged and as_root) else "self"
        who = "an unprivileged user" if field == "unprivileged" else "this user"
        if data.get(field):
            return Outcome(True, f"{who} can create a user namespace and mount inside it")
        blockers = data.get("blockers") or []
        found = f"{who} cannot use user namespaces" + (
            ": " + "; ".join(blockers) if blockers else ""
        )
        return Outcome(False, found, facts.fix_of("user namespaces"))

    return decide


def _subids(facts: Facts) -> Outcome:
    check = facts.by_name.get("subordinate ids")
    if check and check.ok:
        return Outcome(True, "subordinate id ranges are set up (or kit runs as root)")
    return Outcome(False, check.detail if check else "not checked", facts.fix_of("subordinate ids"))


def _overlay(field: str, title: str) -> Callable[[Facts], Outcome]:
    def decide(facts: Facts) -> Outcome:
        data = facts.data("overlayfs")
        if data.get(field):
            return Outcome(True, f"{title} works")
        check = facts.by_name.get("overlayfs")
        return Outcome(
            False,
            f"{title} does not work here" + (f" ({check.detail})" if check else ""),
            facts.fix_of("overlayfs")
            or (check.fix if check else "")
            or facts.host.newer_kernel("6.8" if field == "lowerdir_plus" else "5.11"),
        )

    return decide


def _layout(facts: Facts) -> CgroupLayout:
    data = facts.data("cgroups")
    return CgroupLayout(
        mode=data.get("mode", "none"),
        v1=data.get("v1") or {},
        named={},
        v2=data.get("v2"),
        v2_controllers=tuple(data.get("v2_controllers") or ()),
    )


def _cgroup(controller: str) -> Callable[[Facts], Outcome]:
    def decide(facts: Facts) -> Outcome:
        data = facts.data("cgroups")
        layout = _layout(facts)
        note = f"cgroup {layout.mode} here: {lesson_changes(layout)}"
        if (data.get("usable") or {}).get(controller):
            where = (data.get("controllers") or {}).get(controller)
            return Outcome(True, f"the {controller} controller is usable ({where})", note=note)
        return Outcome(
            False,
            f"this user cannot set {controller} limits ({layout.mode} cgroups)",
            facts.fix_of("cgroups") or facts.host.kernel_parameter(f"cgroup_enable={controller}"),
        )

    return decide


def _cgroup_v2(facts: Facts) -> Outcome:
    mode = facts.data("cgroups").get("mode", "none")
    if mode == "v2":
        return Outcome(True, "the unified cgroup v2 tree holds the controllers")
    wsl = facts.data("environment").get("kind") == "wsl2"
    return Outcome(
        False,
        f"cgroups are {mode} here: the controllers live in v1 hierarchies",
        facts.host.cgroup_v2_fix(wsl=wsl),
    )


def _namespace(kind: str) -> Callable[[Facts], Outcome]:
    def decide(facts: Facts) -> Outcome:
        data = facts.data("namespaces")
        if kind in (data.get("available") or []):
            return Outcome(True, f"{kind} namespaces can be created")
        why = (data.get("missing") or {}).get(kind, "not available")
        return Outcome(False, f"no {kind} namespace: {why}", facts.fix_of("namespaces"))

    return decide


def _seccomp(facts: Facts) -> Outcome:
    data = facts.data("seccomp")
    actions = set(data.get("actions") or ())
    if {"ERRNO", "KILL_PROCESS"} <= actions:
        note = ""
        if data.get("prctl") == 2:
            note = "kit already runs under a seccomp filter: some calls may be refused"
        return Outcome(True, "seccomp filters with ERRNO and KILL_PROCESS", note=note)
    return Outcome(False, "seccomp filters are missing or incomplete", facts.fix_of("seccomp"))


def _landlock(abi: int) -> Callable[[Facts], Outcome]:
    def decide(facts: Facts) -> Outcome:
        have = int(facts.data("landlock").get("abi") or 0)
        if have >= abi:
            return Outcome(True, f"Landlock ABI {have}")
        fix = facts.fix_of("landlock") or facts.host.newer_kernel(_LANDLOCK_KERNELS.get(abi, "?"))
        return Outcome(False, f"Landlock ABI {have}, the lesson needs {abi}", fix)

    return decide


#: The first Linux release of each Landlock ABI version.
_LANDLOCK_KERNELS = {1: "5.13", 2: "5.19", 3: "6.2", 4: "6.7", 5: "6.10", 6: "6.12"}


def _tool(name: str) -> Callable[[Facts], Outcome]:
    def decide(facts: Facts) -> Outcome:
        check = facts.by_name.get(name)
        if check is not None:
            if check.ok:
                return Outcome(True, check.detail)
            return Outcome(False, check.detail, check.fix)
        path = which(name)
        if path:
            return Outcome(True, f"{name} at {path}")
        return Outcome(False, f"{name} is not installed", facts.host.install(name))

    return decide


def _registry(facts: Facts) -> Outcome:
    url = f"http://{os.environ.get('KIT_REGISTRY') or LOCAL_REGISTRY}/v2/"
    fix = f"start the lab's local registry: {facts.host.as_root('scripts/lab-setup.sh --registry')}"
    # Imported here: urllib.request (with http.client, email, ssl) is about 14 ms, and only
    # this one requirement talks to the network.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code  # 401: a registry that wants a token is still a registry
    except (OSError, ValueError) as error:
        return Outcome(False, f"no registry answers at {url} ({error})", fix)
    if status in (200, 401):
        return Outcome(True, f"a registry answers at {url}")
    return Outcome(False, f"{url} answered HTTP {status}, not a registry", fix)


REQUIREMENTS: dict[str, Requirement] = {
    r.key: r
    for r in (
        Requirement(
            "containers",
            "containers",
            "every lesson starts containers",
            ("python", "privileges", "namespaces", "environment"),
            _containers,
        ),
        Requirement(
            "root",
            "real root",
            "only root may use the host's cgroup v1 hierarchies, create device nodes, set "
            "overlay's trusted.* xattrs, look into other users' processes and run runc as root",
            ("privileges",),
            _root,
        ),
        Requirement(
            "userns",
            "user namespaces",
            "lessons that build a user namespace and map ids",
            ("user namespaces",),
            _userns(unprivileged=False),
        ),
        Requirement(
            "userns:unprivileged",
            "user namespaces for ordinary users",
            "rootless lessons run containers as an ordinary user",
            ("user namespaces",),
            _userns(unprivileged=True),
        ),
        Requirement(
            "subids",
            "subordinate id ranges",
            "rootless containers with more than one user inside map a range from /etc/subuid",
            ("subordinate ids",),
            _subids,
        ),
        Requirement(
            "overlay",
            "overlayfs",
            "images are layers stacked with overlayfs",
            ("overlayfs",),
            _overlay("mount", "an overlay mount"),
        ),
        Requirement(
            "overlay:userxattr",
            "overlayfs with userxattr",
            "rootless overlays keep whiteouts and opaque marks in user.* xattrs",
            ("overlayfs",),
            _overlay("userxattr", "overlay's userxattr option"),
        ),
        Requirement(
            "overlay:lowerdir+",
            "overlayfs lowerdir+",
            "many layers added one by one through fsconfig (Linux 6.8)",
            ("overlayfs",),
            _overlay("lowerdir_plus", "overlay's lowerdir+ option"),
        ),
        Requirement(
            "cgroup:v2",
            "cgroup v2",
            "lessons about the unified tree: subtree_control, memory.events",
            ("cgroups",),
            _cgroup_v2,
        ),
        Requirement(
            "seccomp",
            "seccomp",
            "system call filters built in Python as BPF",
            ("seccomp",),
            _seccomp,
        ),
        Requirement(
            "registry:local",
            "a local registry",
            "pull lessons use a registry on this machine, so class needs no network",
            (),
            _registry,
        ),
    )
}

#: Keys with an argument: ``prefix:ARG`` -> (title, why, checks, decide(ARG)).
_FAMILIES: dict[str, tuple[str, str, tuple[str, ...], Callable[[str], Callable[..., Outcome]]]] = {
    "cgroup": (
        "cgroup controller",
        "resource-limit lessons",
        ("cgroups",),
        _cgroup,
    ),
    "namespace": ("namespace type", "lessons about one namespace", ("namespaces",), _namespace),
    "landlock": (
        "Landlock",
        "lessons that confine files (and ports, ABI 4)",
        ("landlock",),
        lambda arg: _landlock(int(arg)),
    ),
    "tool": ("a program", "lessons that compare kit with a peer tool", (), _tool),
}


def requirement(key: str) -> Requirement:
    """The requirement named ``key`` (also ``cgroup:memory``, ``tool:runc``, ``landlock:3``)."""
    if key in REQUIREMENTS:
        return REQUIREMENTS[key]
    if key == "landlock":
        key = "landlock:1"
    family, _, arg = key.partition(":")
    valid = {
        "cgroup": arg in LESSON_CONTROLLERS,
        "namespace": arg in NAMESPACE_KINDS,
        "landlock": arg.isdigit() and int(arg) >= 1,
        "tool": bool(arg) and "/" not in arg,
    }
    if family in _FAMILIES and valid.get(family):
        title, why, checks, make = _FAMILIES[family]
        return Requirement(key, f"{title} {arg}", why, checks, make(arg))
    raise KeyError(key)


def unknown(keys: Iterable[str]) -> list[str]:
    """The keys that name no requirement (lesson authors' typos; tests check every lesson)."""
    bad = []
    for key in keys:
        try:
            requirement(key)
        except KeyError:
            bad.append(key)
    return bad


def all_keys() -> list[str]:
    """Every key worth listing (``kit doctor --requirements``), families expanded."""
    return [
        *REQUIREMENTS,
        *(f"cgroup:{c}" for c in LESSON_CONTROLLERS),
        *(f"namespace:{k}" for k in NAMESPACE_KINDS),
        "landlock",
        *(f"tool:{t}" for t in ("busybox", "runc", "umoci", "skopeo", "podman", "tmux")),
    ]
