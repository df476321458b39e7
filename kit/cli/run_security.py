"""``kit run`` options for privileges: --cap-add, --cap-drop, --security-opt.

kit run --rm --cap-drop ALL --cap-add NET_BIND_SERVICE --rootfs DIR sh
kit run --rm --security-opt seccomp=profile.json --rootfs DIR sh
kit run --rm --security-opt seccomp=unconfined --security-opt no-new-privileges=false ...
kit run --rm --security-opt systempaths=unconfined ...   # no masked or read-only /proc paths

Every option here turns a control off or on; the defaults (Docker's 14 capabilities, a seccomp
allow-list, runc's masked and read-only paths, no_new_privs on) come from
:func:`kit.runtime.defaults.apply_security_defaults`.
"""

from __future__ import annotations

import argparse
import sys

SECURITY_OPTS = (
    "no-new-privileges[=true|false]",
    "seccomp=PROFILE.json",
    "seccomp=unconfined",
    "systempaths=unconfined",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("privileges")
    group.add_argument(
        "--cap-add",
        action="append",
        default=[],
        metavar="CAP",
        help="give the container a capability (NET_ADMIN or CAP_NET_ADMIN, or ALL)",
    )
    group.add_argument(
        "--cap-drop",
        action="append",
        default=[],
        metavar="CAP",
        help="take a capability away (ALL: start from none)",
    )
    group.add_argument(
        "--security-opt",
        action="append",
        default=[],
        metavar="OPT",
        help="; ".join(SECURITY_OPTS),
    )


def _names(values: list[str]) -> list[str]:
    return [name for value in values for name in value.split(",") if name.strip()]


def parse_security_opts(values: list[str]) -> dict[str, str]:
    """``--security-opt`` words -> {"no-new-privileges": "true", "seccomp": PATH, ...}."""
    from kit.errors import KitError

    chosen: dict[str, str] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep and ":" in text:  # Docker's old form: no-new-privileges:true
            key, _, value = text.partition(":")
        if key == "no-new-privileges":
            value = value or "true"
            if value not in ("true", "false"):
                raise KitError(
                    f"--security-opt {text}: {value!r} is not true or false",
                    fix="write no-new-privileges or no-new-privileges=false",
                    exit_code=2,
                )
        elif (key == "seccomp" and value) or (key == "systempaths" and value == "unconfined"):
            pass  # checked when applied
        elif key in ("apparmor", "label"):
            raise KitError(
                f"--security-opt {text}: kit does not use {key} (AppArmor/SELinux)",
                cause="kit's file access control is Landlock (--landlock)",
                fix="drop this option",
                exit_code=2,
            )
        else:
            raise KitError(
                f"unknown --security-opt {text!r}",
                fix="use one of: " + ", ".join(SECURITY_OPTS),
                exit_code=2,
            )
        if key in chosen and chosen[key] != value:
            raise KitError(
                f"--security-opt {key} is given twice ({chosen[key]} and {value})",
                fix="give it once",
                exit_code=2,
            )
        chosen[key] = value
    return chosen


def apply(args: argparse.Namespace, spec) -> None:  # type: ignore[no-untyped-def]
    from kit.security import capabilities as caps
    from kit.security import seccomp_default, seccomp_profile

    options = parse_security_opts(args.security_opt)
    have = caps.available()
    if args.cap_add or args.cap_drop:
        names = caps.resolve(_names(args.cap_add), _names(args.cap_drop), everything=have)
        caps.check_available(names, have)
        spec.process.capabilities = caps.container_capabilities(names)
    granted = spec.process.capabilities.bounding if spec.process.capabilities else have
    if "no-new-privileges" in options:
        spec.process.no_new_privileges = options["no-new-privileges"] == "true"
    if options.get("systempaths") == "unconfined":
        spec.linux.masked_paths = []
        spec.linux.readonly_paths = []
    seccomp = options.get("seccomp")
    if seccomp == "unconfined":
        spec.linux.seccomp = None
    elif seccomp:
        data = seccomp_profile.load_file(seccomp)
        spec.linux.seccomp = seccomp_profile.resolve_docker(
            data, capabilities=list(granted), source=seccomp
        )
        unknown = seccomp_profile.unknown_names(seccomp_profile.parse(spec.linux.seccomp))
        if unknown:
            sys.stderr.write(
                f"kit: warning: {seccomp} names system calls no architecture kit knows has "
                f"(ignored): {', '.join(unknown)}\n"
            )
    elif args.cap_add or args.cap_drop:
        # The default profile allows some calls only with a capability: redo it for this list.
        spec.linux.seccomp = seccomp_default.resolved_default_profile(list(granted))
