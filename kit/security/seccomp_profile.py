"""seccomp profiles: the JSON formats, checked strictly, and Docker's conditional rules resolved.

Two closely related formats describe which system calls a container may make:

* the **OCI** form, ``linux.seccomp`` in config.json, which runtimes (runc, kit) execute::

      {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
       "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}]}

* the **Docker** profile file (``--security-opt seccomp=FILE``), the same plus rules that
  apply only sometimes: ``includes``/``excludes`` by capability, architecture or minimum
  kernel, an ``archMap`` instead of ``architectures``, and ``comment``. An engine resolves
  those for one container (:func:`resolve_docker`) and hands the runtime the OCI form.

Every problem is reported with the JSON path where it is (``syscalls[3].args[0].op``), since
a profile is hundreds of lines long.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from kit.errors import KitError
from kit.linux.seccomp import FILTER_FLAGS
from kit.security import bpf
from kit.security.syscall_tables import TABLES

#: action name -> seccomp return value (without data). SCMP_ACT_KILL is libseccomp's old name
#: for killing the thread.
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": bpf.SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": bpf.SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": bpf.SECCOMP_RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": bpf.SECCOMP_RET_TRAP,
    "SCMP_ACT_ERRNO": bpf.SECCOMP_RET_ERRNO,
    "SCMP_ACT_TRACE": bpf.SECCOMP_RET_TRACE,
    "SCMP_ACT_LOG": bpf.SECCOMP_RET_LOG,
    "SCMP_ACT_ALLOW": bpf.SECCOMP_RET_ALLOW,
    "SCMP_ACT_NOTIFY": bpf.SECCOMP_RET_USER_NOTIF,
}

OPERATORS = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)

#: Filter flags a profile may ask seccomp(2) for, by name.
FLAGS: dict[str, int] = dict(FILTER_FLAGS.names)

#: libseccomp architecture names -> (kit's table name, AUDIT_ARCH_* value) for the ABIs kit
#: can filter; other names are valid in a profile but concern machines kit does not run on.
ARCHITECTURES: dict[str, tuple[str, int] | None] = {
    "SCMP_ARCH_X86_64": ("x86_64", 0xC000003E),
    "SCMP_ARCH_X86": ("x86", 0x40000003),
    "SCMP_ARCH_AARCH64": ("aarch64", 0xC00000B7),
    "SCMP_ARCH_X32": None,
    "SCMP_ARCH_ARM": None,
    "SCMP_ARCH_MIPS": None,
    "SCMP_ARCH_MIPS64": None,
    "SCMP_ARCH_MIPS64N32": None,
    "SCMP_ARCH_MIPSEL": None,
    "SCMP_ARCH_MIPSEL64": None,
    "SCMP_ARCH_MIPSEL64N32": None,
    "SCMP_ARCH_PPC": None,
    "SCMP_ARCH_PPC64": None,
    "SCMP_ARCH_PPC64LE": None,
    "SCMP_ARCH_S390": None,
    "SCMP_ARCH_S390X": None,
    "SCMP_ARCH_PARISC": None,
    "SCMP_ARCH_PARISC64": None,
    "SCMP_ARCH_RISCV64": None,
    "SCMP_ARCH_LOONGARCH64": None,
}

#: ``uname -m`` -> (libseccomp name, Go's name as Docker profiles' ``arches`` use it).
NATIVE: dict[str, tuple[str, str]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
}

MAX_ERRNO = 4095  # the kernel clamps SECCOMP_RET_ERRNO data to this


@dataclass(frozen=True)
class Action:
    """What the filter does with a call: allow it, fail it with an errno, kill, trap, log."""

    name: str
    data: int = 0

    @property
    def value(self) -> int:
        return ACTIONS[self.name] | self.data

    def render(self) -> str:
        return bpf.render_return(self.value)


@dataclass(frozen=True)
class Condition:
    """``args[index] <op> value`` (for MASKED_EQ: ``args[index] & value == value_two``)."""

    index: int
    value: int
    value_two: int
    op: str


@dataclass
class Rule:
    names: list[str]
    action: Action
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class Profile:
    """An OCI seccomp profile, checked."""

    default_action: Action
    architectures: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def flag_bits(self) -> int:
        out = 0
        for name in self.flags:
            out |= FLAGS[name]
        return out


# --- reading the OCI form -----------------------------------------------------------------------


class _Checker:
    """Strict JSON reading with the path of every problem in the error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str, fix: str) -> KitError:
        return KitError(f"seccomp profile {self.source}: {path}: {problem}", fix=fix, exit_code=2)

    def object(self, data: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(path, f"must be a JSON object, not {_show(data)}", "use {...}")
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"{path}.{key}" if path != "(top)" else key,
                    "unknown field",
                    f"the fields allowed here are: {', '.join(allowed)}",
                )
        return data

    def list(self, data: Any, path: str) -> list[Any]:
        if not isinstance(data, list):
            raise self.fail(path, f"must be a JSON list, not {_show(data)}", "use [...]")
        return data

    def string(self, data: Any, path: str) -> str:
        if not isinstance(data, str) or not data:
            raise self.fail(path, f"must be a non-empty string, not {_show(data)}", "use quotes")
        return data

    def integer(self, data: Any, path: str, low: int, high: int) -> int:
        if isinstance(data, bool) or not isinstance(data, int) or not low <= data <= high:
            raise self.fail(
                path, f"must be an integer from {low} to {high}, not {_show(data)}", "fix it"
            )
        return data

    def choice(self, data: Any, path: str, choices: Any, what: str) -> str:
        text = self.string(data, path)
        if text not in choices:
            raise self.fail(
                path, f"unknown {what} {text!r}", f"use one of: {', '.join(sorted(choices))}"
            )
        return text


def _show(data: Any) -> str:
    return json.dumps(data)[:40]


def _action(check: _Checker, name_data: Any, errno_data: Any, path: str, errno_key: str) -> Action:
    name = check.choice(name_data, path, ACTIONS, "action")
    if name == "SCMP_ACT_NOTIFY":
        raise check.fail(
            path,
            "SCMP_ACT_NOTIFY hands calls to a supervising agent, which kit does not have",
            "use SCMP_ACT_ERRNO, SCMP_ACT_LOG or SCMP_ACT_ALLOW instead",
        )
    where = path.rsplit(".", 1)[0] + "." + errno_key if "." in path else errno_key
    if errno_data is not None and name not in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        raise check.fail(
            where,
            f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not {name}",
            f"remove {errno_key}, or change the action",
        )
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        # Without an explicit errno, a refused call fails with EPERM (1), as in runc.
        data = 1 if errno_data is None else check.integer(errno_data, where, 0, MAX_ERRNO)
        return Action(name, data)
    return Action(name)


def parse(data: Any, *, source: str = "linux.seccomp") -> Profile:
    """Check an OCI profile (a dict from JSON) and return it as a :class:`Profile`."""
    check = _Checker(source)
    top = check.object(
        data,
        "(top)",
        (
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "flags",
            "syscalls",
            "listenerPath",
            "listenerMetadata",
        ),
    )
    if "defaultAction" not in top:
        raise check.fail(
            "defaultAction", "is missing", 'add e.g. "defaultAction": "SCMP_ACT_ERRNO"'
        )
    if top.get("listenerPath"):
        raise check.fail(
            "listenerPath", "kit has no seccomp agent to notify", "remove listenerPath"
        )
    default = _action(
        check, top["defaultAction"], top.get("defaultErrnoRet"), "defaultAction", "defaultErrnoRet"
    )
    architectures = []
    for i, item in enumerate(check.list(top.get("architectures", []), "architectures")):
        architectures.append(
            check.choice(item, f"architectures[{i}]", ARCHITECTURES, "architecture")
        )
    flags = []
    for i, item in enumerate(check.list(top.get("flags", []), "flags")):
        flags.append(check.choice(item, f"flags[{i}]", FLAGS, "filter flag"))
    rules = []
    for i, item in enumerate(check.list(top.get("syscalls", []), "syscalls")):
        path = f"syscalls[{i}]"
        entry = check.object(item, path, ("names", "action", "errnoRet", "args"))
        if "action" not in entry:
            raise check.fail(path, "has no action", 'add e.g. "action": "SCMP_ACT_ALLOW"')
        names = check.list(entry.get("names"), f"{path}.names")
        if not names:
            raise check.fail(f"{path}.names", "is empty", "list at least one system call name")
        for j, name in enumerate(names):
            check.string(name, f"{path}.names[{j}]")
        action = _action(
            check, entry["action"], entry.get("errnoRet"), f"{path}.action", "errnoRet"
        )
        conditions = []
        for j, arg in enumerate(check.list(entry.get("args", []), f"{path}.args")):
            where = f"{path}.args[{j}]"
            fields = check.object(arg, where, ("index", "value", "valueTwo", "op"))
            for key in ("index", "value", "op"):
                if key not in fields:
                    raise check.fail(where, f"has no {key}", f"add {key}")
            conditions.append(
                Condition(
                    index=check.integer(fields["index"], f"{where}.index", 0, 5),
                    value=check.integer(fields["value"], f"{where}.value", 0, 2**64 - 1),
                    value_two=check.integer(
                        fields.get("valueTwo", 0), f"{where}.valueTwo", 0, 2**64 - 1
                    ),
                    op=check.choice(fields["op"], f"{where}.op", OPERATORS, "operator"),
                )
            )
        rules.append(Rule(list(names), action, conditions))
    return Profile(default, architectures, flags, rules)


def load_file(path: str) -> dict[str, Any]:
    """Read a profile file (JSON), with a clear error for a missing file or bad JSON."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        raise KitError(
            f"seccomp profile {path} does not exist",
            fix="give the path of a JSON profile, or seccomp=unconfined",
            exit_code=2,
        ) from None
    try:
        return json.loads(text)  # type: ignore[no-any-return]
    except json.JSONDecodeError as exc:
        raise KitError(
            f"seccomp profile {path} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}",
            fix="fix the JSON syntax (a missing comma or quote is the usual culprit)",
            exit_code=2,
        ) from None


# --- Docker's conditional rules -----------------------------------------------------------------


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of ``uname -r``, e.g. (6, 18)."""
    text = release or os.uname().release
    parts = text.split("-")[0].split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _parse_version(check: _Checker, text: Any, path: str) -> tuple[int, int]:
    value = check.string(text, path)
    try:
        return kernel_version(value)
    except ValueError:
        raise check.fail(path, f"{value!r} is not a kernel version", 'write it as "4.8"') from None


def resolve_docker(
    data: Any,
    *,
    capabilities: list[str],
    machine: str | None = None,
    kernel: tuple[int, int] | None = None,
    source: str = "profile",
) -> dict[str, Any]:
    """Turn a Docker profile into the OCI form for one container.

    A rule with ``includes`` applies only if the container has *all* the listed capabilities,
    runs on one of the listed architectures and on at least ``minKernel``; a rule with
    ``excludes`` is dropped if the container has *any* listed capability or runs on a listed
    architecture. ``archMap`` picks this machine's entry: its architecture plus the 32-bit
    ones it can also run.
    """
    check = _Checker(source)
    machine = machine or os.uname().machine
    kernel = kernel or kernel_version()
    native, go_arch = NATIVE.get(machine, (f"SCMP_ARCH_{machine.upper()}", machine))
    top = check.object(
        data,
        "(top)",
        (
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "archMap",
            "flags",
            "syscalls",
            "listenerPath",
            "listenerMetadata",
        ),
    )
    out: dict[str, Any] = {k: v for k, v in top.items() if k not in ("archMap", "syscalls")}
    if "archMap" in top:
        if "architectures" in top:
            raise check.fail(
                "archMap", "a profile gives architectures or archMap, not both", "keep one"
            )
        out["architectures"] = []
        for i, entry in enumerate(check.list(top["archMap"], "archMap")):
            item = check.object(entry, f"archMap[{i}]", ("architecture", "subArchitectures"))
            arch = check.choice(
                item.get("architecture"), f"archMap[{i}].architecture", ARCHITECTURES, "arch"
            )
            subs = item.get("subArchitectures") or []
            for j, sub in enumerate(check.list(subs, f"archMap[{i}].subArchitectures")):
                check.choice(sub, f"archMap[{i}].subArchitectures[{j}]", ARCHITECTURES, "arch")
            if arch == native:
                out["architectures"] = [arch, *subs]
    rules = []
    for i, item in enumerate(check.list(top.get("syscalls", []), "syscalls")):
        path = f"syscalls[{i}]"
        entry = check.object(
            item,
            path,
            ("names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes"),
        )
        rule = {
            k: v for k, v in entry.items() if k not in ("name", "comment", "includes", "excludes")
        }
        if "name" in entry:  # the old one-name form
            if "names" in entry:
                raise check.fail(path, "has both name and names", "keep names")
            rule["names"] = [check.string(entry["name"], f"{path}.name")]
        if _applies(check, entry, path, capabilities, go_arch, kernel):
            rules.append(rule)
    out["syscalls"] = rules
    parse(out, source=source)  # everything else is checked in the OCI form
    return out


def _applies(
    check: _Checker,
    entry: dict[str, Any],
    path: str,
    capabilities: list[str],
    go_arch: str,
    kernel: tuple[int, int],
) -> bool:
    includes = check.object(
        entry.get("includes", {}), f"{path}.includes", ("caps", "arches", "minKernel")
    )
    excludes = check.object(
        entry.get("excludes", {}), f"{path}.excludes", ("caps", "arches", "minKernel")
    )
    want_caps = check.list(includes.get("caps", []), f"{path}.includes.caps")
    if any(cap not in capabilities for cap in want_caps):
        return False
    arches = check.list(includes.get("arches", []), f"{path}.includes.arches")
    if arches and go_arch not in arches:
        return False
    if "minKernel" in includes and kernel < _parse_version(
        check, includes["minKernel"], f"{path}.includes.minKernel"
    ):
        return False
    if any(
        cap in capabilities for cap in check.list(excludes.get("caps", []), f"{path}.excludes.caps")
    ):
        return False
    if go_arch in check.list(excludes.get("arches", []), f"{path}.excludes.arches"):
        return False
    if "minKernel" in excludes:
        limit = _parse_version(check, excludes["minKernel"], f"{path}.excludes.minKernel")
        if kernel >= limit:
            return False
    return True


def unknown_names(profile: Profile) -> list[str]:
    """Names that are a system call on none of the architectures kit knows (typos, usually).

    Names known on another architecture only (``chown32`` on x86_64) are normal in profiles
    written for many machines, and are not reported.
    """
    known: set[str] = set()
    for table in TABLES.values():
        known.update(table)
    return sorted({n for rule in profile.rules for n in rule.names if n not in known})
