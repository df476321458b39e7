"""Device rules: which device nodes a container may create and open, and how a list of rules
adds up to one policy.

A device node is only a name for a (type, major, minor) triple, and root with CAP_MKNOD
(Docker's default set keeps it) can make one anywhere it may write: ``mknod /dev/x b 254 0``
names the host's disk, whatever the mount namespace shows. Namespaces do not stop that; the
cgroup's device policy does. An OCI spec states it as ``linux.resources.devices``, rules read
in order, each with an action, a type, numbers (absent: any) and an access::

    {"allow": false, "access": "rwm"}                           deny everything ("a")
    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}   then /dev/null

Access letters: ``r`` open for reading, ``w`` open for writing, ``m`` mknod. The runtime then
appends the rules every container needs (runc's ``AllowedDevices``, kept in the same order):
mknod of any node (``c *:* m``, ``b *:* m``: *creating* a node is harmless, opening it is what
counts), the standard nodes and the terminal devices.

The list is folded into a :class:`DevicePolicy` (a default, plus exceptions to it) exactly as
the kernel's v1 devices controller folds the lines written to ``devices.allow`` and
``devices.deny``; runc's ``devices.Emulator`` does the same, so that cgroup v2 (a BPF program
built from the policy, :mod:`kit.security.device_filter`) behaves like v1:

* a rule of type ``a`` starts over: everything allowed or everything denied, no exceptions;
* a rule whose action differs from the default adds an exception (access letters merge);
* a rule whose action *is* the default removes those letters from the exception with the same
  type and numbers. v1 silently ignores removing part of a wider wildcard exception (denying
  ``c 1:3 w`` after allowing ``c *:* rwm`` changes nothing); kit refuses such a list, as runc
  does, instead of leaving a hole the rule's author believed closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kit.errors import KitError
from kit.spec import DeviceRule, Spec

ACCESS = "rwm"

#: What every container may do besides its spec's rules (runc's AllowedDevices, plus the
#: console Docker allows; runc 1.1 also allowed /dev/net/tun, which runc 1.2 dropped).
STANDARD_RULES: tuple[DeviceRule, ...] = (
    DeviceRule(True, "c", None, None, "m"),  # mknod of any character device
    DeviceRule(True, "b", None, None, "m"),  # mknod of any block device
    DeviceRule(True, "c", 1, 3, "rwm"),  # /dev/null
    DeviceRule(True, "c", 1, 8, "rwm"),  # /dev/random
    DeviceRule(True, "c", 1, 7, "rwm"),  # /dev/full
    DeviceRule(True, "c", 5, 0, "rwm"),  # /dev/tty
    DeviceRule(True, "c", 1, 5, "rwm"),  # /dev/zero
    DeviceRule(True, "c", 1, 9, "rwm"),  # /dev/urandom
    DeviceRule(True, "c", 5, 1, "rwm"),  # /dev/console
    DeviceRule(True, "c", 136, None, "rwm"),  # /dev/pts/N (the container's own ptys)
    DeviceRule(True, "c", 5, 2, "rwm"),  # /dev/ptmx
)

#: The rule a container spec starts with (``runc spec``, Docker, podman): deny everything.
DENY_ALL = DeviceRule(False, None, None, None, "rwm")

#: Docker's --device-cgroup-rule syntax: "c 1:3 rwm", "b *:* r", "a".
_RULE = re.compile(r"^([abc])(?: (\d+|\*):(\d+|\*))?(?: ([rwm]{1,3}))?$")


@dataclass(frozen=True)
class Entry:
    """One exception of a policy: a device type, numbers (None: any) and access letters."""

    type: str
    major: int | None
    minor: int | None
    access: str

    def line(self) -> str:
        """``c 1:3 rwm``: the form devices.allow, devices.list and Docker use."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


@dataclass
class DevicePolicy:
    """A default (allow or deny every device) and the exceptions to it, in rule order."""

    default_allow: bool = False
    entries: list[Entry] = field(default_factory=list)

    @property
    def allows_everything(self) -> bool:
        return self.default_allow and not self.entries

    def describe(self) -> list[str]:
        """``["deny a *:* rwm", "allow c 1:3 rwm", ...]``: the policy in words."""
        default = "allow" if self.default_allow else "deny"
        exception = "deny" if self.default_allow else "allow"
        return [f"{default} a *:* rwm"] + [f"{exception} {e.line()}" for e in self.entries]


def _number(value: int | None) -> int | None:
    """OCI writes "any" as an absent number (or -1, as runc's Go structs do)."""
    return None if value is None or value < 0 else value


def _access(rule: DeviceRule) -> str:
    letters = rule.access if rule.access else ACCESS
    if not letters or set(letters) - set(ACCESS):
        raise KitError(
            f"invalid device access {letters!r} in {rule_line(rule, raw=True)}",
            cause="access is made of r (open for reading), w (open for writing) and m (mknod)",
            fix='write e.g. "access": "rwm" or "r"',
        )
    return "".join(c for c in ACCESS if c in letters)


def rule_line(rule: DeviceRule, *, raw: bool = False) -> str:
    """``allow c 1:3 rwm`` / ``deny a``: one rule in words."""
    action = "allow" if rule.allow else "deny"
    kind = rule.type or "a"
    if kind == "a":
        return f"{action} a"
    major = "*" if _number(rule.major) is None else str(rule.major)
    minor = "*" if _number(rule.minor) is None else str(rule.minor)
    access = rule.access if raw else (rule.access or ACCESS)
    return f"{action} {kind} {major}:{minor} {access}"


def parse_rule(text: str, allow: bool = True, flag: str = "--device-cgroup-rule") -> DeviceRule:
    """``c 1:3 rwm`` -> DeviceRule (Docker's --device-cgroup-rule syntax; access default rwm)."""
    match = _RULE.match(" ".join(text.split()))
    if not match:
        raise KitError(
            f"invalid {flag} {text!r}",
            cause="a rule is TYPE MAJOR:MINOR ACCESS: TYPE is c (character), b (block) or a "
            "(all), MAJOR and MINOR are numbers or *, ACCESS is some of r, w, m",
            fix=f"write e.g. {flag} 'c 1:3 rwm' or {flag} 'b 8:* r'",
            exit_code=2,
        )
    kind, major, minor, access = match.groups()
    if kind == "a":
        return DeviceRule(allow, None, None, None, access or ACCESS)
    return DeviceRule(
        allow,
        kind,
        None if major in (None, "*") else int(major),
        None if minor in (None, "*") else int(minor),
        access or ACCESS,
    )


def rules_for(spec: Spec) -> list[DeviceRule]:
    """The rules in the order they apply: the spec's, then the standard ones (as runc).

    A node listed in ``linux.devices`` is created in the container but not allowed by that
    alone: its rule comes from ``linux.resources.devices`` (``--device`` adds both, with its
    access letters, as Docker does), so ``--device /dev/x:/dev/x:r`` stays read-only."""
    resources = spec.linux.resources
    rules = list(resources.devices) if resources is not None else []
    return rules + list(STANDARD_RULES)


def fold(rules: list[DeviceRule]) -> DevicePolicy:
    """The policy a list of rules adds up to (see the module docstring). Starts from "deny
    everything": a container without rules gets only the standard devices, as with runc."""
    policy = DevicePolicy()
    exceptions: dict[tuple[str, int | None, int | None], str] = {}
    for rule in rules:
        kind = rule.type or "a"
        if kind not in ("a", "b", "c"):
            raise KitError(
                f"invalid device type {kind!r} in {rule_line(rule, raw=True)}",
                cause="a device rule's type is c (character), b (block) or a (all)",
                fix='write "type": "c", "b" or "a" (or leave it out: all devices)',
            )
        access = _access(rule)
        if kind == "a":
            policy.default_allow = rule.allow
            exceptions = {}
            continue
        key = (kind, _number(rule.major), _number(rule.minor))
        if rule.allow != policy.default_allow:
            merged = set(exceptions.get(key, "")) | set(access)
            exceptions[key] = "".join(c for c in ACCESS if c in merged)
            continue
        _refuse_partial(rule, key, access, exceptions)
        left = "".join(c for c in exceptions.get(key, "") if c not in access)
        if left:
            exceptions[key] = left
        else:
            exceptions.pop(key, None)
    policy.entries = [Entry(k, major, minor, a) for (k, major, minor), a in exceptions.items()]
    return policy


def _refuse_partial(
    rule: DeviceRule,
    key: tuple[str, int | None, int | None],
    access: str,
    exceptions: dict[tuple[str, int | None, int | None], str],
) -> None:
    """A rule taking access away from part of a wider wildcard exception is refused."""
    kind, major, minor = key
    for wider in ((kind, None, minor), (kind, major, None), (kind, None, None)):
        if wider == key or not set(exceptions.get(wider, "")) & set(access):
            continue
        entry = Entry(*wider, exceptions[wider])
        raise KitError(
            f"the device rule '{rule_line(rule)}' cannot narrow the earlier wildcard "
            f"'{entry.line()}'",
            cause="the kernel keeps wildcard exceptions whole: cgroup v1 would silently "
            "ignore this rule and leave the device reachable (runc refuses it too)",
            fix="remove the letters from the wildcard rule itself, or list exact devices "
            "instead of the wildcard",
        )


def policy_for(spec: Spec) -> DevicePolicy:
    """The container's device policy: its spec's rules plus the standard ones, folded."""
    return fold(rules_for(spec))
