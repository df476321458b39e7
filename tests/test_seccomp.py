"""seccomp: profiles checked with JSON paths, Docker's conditional rules, the BPF compiler
(checked by the real kernel, argument comparisons at the 32-bit boundary included), the
generated system call tables (checked against the kernel headers), and containers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import compile_static, kit_command

from kit.errors import KitError
from kit.security import bpf, seccomp_default, seccomp_filter, seccomp_profile
from kit.security.syscall_tables import TABLES

REPO = Path(__file__).resolve().parent.parent
MACHINE = os.uname().machine

# --- malformed profiles: refused, with the JSON path of the problem ------------------------------


@pytest.mark.parametrize(
    ("profile", "path", "words"),
    [
        ({}, "defaultAction", "is missing"),
        ({"defaultAction": "SCMP_ACT_DENY"}, "defaultAction", "unknown action"),
        ({"defaultActon": "SCMP_ACT_ERRNO"}, "defaultActon", "unknown field"),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]},
            "architectures[0]",
            "unknown architecture",
        ),
        (
            {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]},
            "syscalls[0]",
            "has no action",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["write"], "action": "SCMP_ACT_ALOW"},
                ],
            },
            "syscalls[1].action",
            "unknown action 'SCMP_ACT_ALOW'",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}],
            },
            "syscalls[0].names",
            "is empty",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}],
            },
            "syscalls[0].errnoRet",
            "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["socket"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "syscalls[0].args[0].index",
            "from 0 to 5",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["socket"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "syscalls[0].args[0].value",
            "integer from 0",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["socket"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SAME"}],
                    }
                ],
            },
            "syscalls[0].args[0].op",
            "unknown operator",
        ),
        (
            {"defaultAction": "SCMP_ACT_NOTIFY"},
            "defaultAction",
            "supervising agent",
        ),
        ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}, "defaultErrnoRet", "4095"),
    ],
)
def test_malformed_profiles_are_refused_with_the_json_path(
    profile: dict, path: str, words: str
) -> None:
    with pytest.raises(KitError) as caught:
        seccomp_profile.parse(profile, source="p.json")
    message = str(caught.value)
    assert f"p.json: {path}:" in message
    assert words in message
    assert caught.value.exit_code == 2


def test_docker_only_fields_are_checked_too() -> None:
    bad = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"capz": []}}],
    }
    with pytest.raises(KitError, match=r"syscalls\[0\]\.includes\.capz: unknown field"):
        seccomp_profile.resolve_docker(bad, capabilities=[])


def test_a_file_that_is_not_json_is_refused_with_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "p.json"
    broken.write_text('{"defaultAction": "SCMP_ACT_ERRNO",\n "syscalls": [}\n')
    with pytest.raises(KitError, match=r"not valid JSON: .* line 2 column"):
        seccomp_profile.load_file(str(broken))
    with pytest.raises(KitError, match="does not exist"):
        seccomp_profile.load_file(str(tmp_path / "missing.json"))


def test_errno_defaults_to_eperm() -> None:
    profile = seccomp_profile.parse(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert profile.default_action.value == bpf.SECCOMP_RET_ERRNO | 1
    assert profile.rules[0].action.value == bpf.SECCOMP_RET_ERRNO | 1


# --- Docker's conditional rules ---------------------------------------------------------------


def _names(resolved: dict) -> set[str]:
    return {name for rule in resolved["syscalls"] for name in rule["names"]}


def test_rules_follow_the_containers_capabilities() -> None:
    plain = seccomp_default.resolved_default_profile(["CAP_CHOWN"])
    admin = seccomp_default.resolved_default_profile(["CAP_CHOWN", "CAP_SYS_ADMIN"])
    assert "mount" not in _names(plain) and "mount" in _names(admin)
    assert "unshare" not in _names(plain) and "unshare" in _names(admin)
    # clone is limited by argument without CAP_SYS_ADMIN, allowed outright with it.
    clone_rules = [r for r in plain["syscalls"] if r["names"] == ["clone"]]
    assert clone_rules and clone_rules[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
    clone3 = [r for r in plain["syscalls"] if r["names"] == ["clone3"]]
    assert clone3[0]["action"] == "SCMP_ACT_ERRNO" and clone3[0]["errnoRet"] == 38
    assert not [r for r in admin["syscalls"] if r["names"] == ["clone3"] and "errnoRet" in r]


def test_arches_min_kernel_and_arch_map_resolve_for_this_machine() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": [
            {
                "names": ["arch_prctl"],
                "action": "SCMP_ACT_ALLOW",
                "includes": {"arches": ["amd64"]},
            },
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.1"}},
            {"name": "getpid", "action": "SCMP_ACT_ALLOW", "comment": "old one-name form"},
            {"names": ["sync"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        ],
    }
    x86 = seccomp_profile.resolve_docker(profile, capabilities=[], machine="x86_64", kernel=(6, 1))
    arm = seccomp_profile.resolve_docker(profile, capabilities=[], machine="aarch64", kernel=(4, 4))
    assert x86["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert _names(x86) == {"arch_prctl", "ptrace", "getpid"}
    assert _names(arm) == {"getpid", "sync"}
    assert "archMap" not in x86 and all("comment" not in r for r in x86["syscalls"])


def test_every_name_in_the_default_profile_is_a_system_call_somewhere() -> None:
    profile = seccomp_profile.parse(seccomp_default.resolved_default_profile(["CAP_SYS_ADMIN"]))
    assert seccomp_profile.unknown_names(profile) == []
    typo = seccomp_profile.parse(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["chown32", "mkdri"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert seccomp_profile.unknown_names(typo) == ["mkdri"]  # chown32 is an x86 call


# --- the system call tables, against the kernel headers ---------------------------------------


def test_generated_tables_match_the_kernel_headers() -> None:
    generated = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_syscall_tables.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    checked_in = (REPO / "kit" / "security" / "syscall_tables.py").read_text()
    assert generated == checked_in


def test_tables_agree_with_what_libc_knows() -> None:
    # glibc's own numbers (SYS_*), as the running interpreter's libc uses them.
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read_text()
    assert f"#define __NR_openat {TABLES['x86_64']['openat']}\n" in header
    assert TABLES["x86_64"]["read"] == 0 and TABLES["x86"]["read"] == 3
    assert TABLES["aarch64"]["read"] == 63 and TABLES["aarch64"]["openat"] == 56
    assert "open" not in TABLES["aarch64"]  # the generic table only has openat


# --- the compiled program ----------------------------------------------------------------------


def _default_program() -> list[bpf.Instruction]:
    profile = seccomp_profile.parse(seccomp_default.resolved_default_profile(["CAP_CHOWN"]))
    return seccomp_filter.compile_profile(profile, MACHINE)


def test_the_architecture_is_checked_before_any_number() -> None:
    program = _default_program()
    assert program[0].code == bpf.LD_ABS and program[0].k == bpf.OFFSET_ARCH
    native = seccomp_profile.ARCHITECTURES[seccomp_profile.NATIVE[MACHINE][0]]
    assert native is not None and program[1].k == native[1]
    first_nr_load = next(
        i for i, ins in enumerate(program) if ins.code == bpf.LD_ABS and ins.k == 0
    )
    # Every instruction before the first look at the number is about the architecture.
    assert all(
        ins.code != bpf.RET_K or ins.k == bpf.SECCOMP_RET_KILL_PROCESS
        for ins in program[:first_nr_load]
    )


def test_program_round_trips_through_bytes_and_disassembles_readably() -> None:
    program = _default_program()
    data = bpf.encode(program)
    assert len(data) == 8 * len(program)
    decoded = bpf.decode(data)
    assert [(i.code, i.jt, i.jf, i.k) for i in decoded] == [
        (i.code, i.jt, i.jf, i.k) for i in program
    ]
    text = "\n".join(bpf.disassemble(program))
    assert text.splitlines()[0].startswith("0000  20 00 00 00000004  A = arch")
    assert "return KILL_PROCESS" in text
    assert "# read" in text and "return ERRNO(1) /* EPERM */" in text
    assert "return ERRNO(38) /* ENOSYS */" in text


def test_rules_equal_to_the_default_are_left_out() -> None:
    profile = seccomp_profile.parse(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    program = seccomp_filter.compile_profile(profile, MACHINE)
    assert not any(ins.comment == "read" for ins in program)


# --- the compiler, judged by the kernel -----------------------------------------------------------

HARNESS = textwrap.dedent(
    """
    import ctypes, json, os, sys
    sys.path.insert(0, {repo!r})
    from kit.linux import caps, seccomp
    from kit.security import bpf, seccomp_filter, seccomp_profile
    from kit.security.syscall_tables import TABLES
    program = seccomp_filter.compile_profile(seccomp_profile.parse(json.loads(sys.argv[1])))
    calls = json.loads(sys.argv[2])
    table = TABLES[os.uname().machine]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    caps.set_no_new_privs()
    seccomp.set_mode_filter(bpf.encode(program))
    results = []
    for name, args in calls:
        number = name if isinstance(name, int) else table[name]
        ctypes.set_errno(0)
        value = libc.syscall(ctypes.c_long(number), *[ctypes.c_ulong(a) for a in args])
        results.append(ctypes.get_errno() if value == -1 else 0)
    # Straight to the pipe and out: under a strict profile, interpreter shutdown may be refused.
    os.write(1, json.dumps(results).encode())
    os._exit(0)
    """
)


def kernel_verdicts(profile: dict, calls: list[tuple[str | int, list[int]]]) -> list[int]:
    """Install the compiled filter in a fresh process and make the calls: 0 or the errno."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            HARNESS.format(repo=str(REPO)),
            json.dumps(profile),
            json.dumps(calls),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


BIG = 0x1_0000_0005  # a value whose high and low 32-bit words both matter
ARGS = [0, 5, BIG - 1, BIG, BIG + 1, 0xFFFF_FFFF, 0x1_0000_0000, 0x2_0000_0000, 0x2_0000_0005]
REFERENCE = {
    "SCMP_CMP_EQ": lambda a: a == BIG,
    "SCMP_CMP_NE": lambda a: a != BIG,
    "SCMP_CMP_GT": lambda a: a > BIG,
    "SCMP_CMP_GE": lambda a: a >= BIG,
    "SCMP_CMP_LT": lambda a: a < BIG,
    "SCMP_CMP_LE": lambda a: a <= BIG,
}


@pytest.mark.parametrize("op", sorted(REFERENCE))
def test_argument_comparisons_match_64_bit_arithmetic(op: str) -> None:
    # getppid ignores its arguments, but the filter sees the registers: a harmless target.
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["getppid"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 77,
                "args": [{"index": 2, "value": BIG, "op": op}],
            }
        ],
    }
    verdicts = kernel_verdicts(profile, [("getppid", [0, 0, a]) for a in ARGS])
    assert verdicts == [77 if REFERENCE[op](a) else 0 for a in ARGS]


def test_masked_equality_uses_both_words() -> None:
    mask, expected = 0xF_0000_000F, 0x1_0000_0005
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["getppid"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 78,
                "args": [
                    {"index": 0, "value": mask, "valueTwo": expected, "op": "SCMP_CMP_MASKED_EQ"}
                ],
            }
        ],
    }
    values = [0x1_2345_6785, 0x2_2345_6785, 0x1_2345_6784, 0x5]
    verdicts = kernel_verdicts(profile, [("getppid", [v]) for v in values])
    assert verdicts == [78 if (v & mask) == expected else 0 for v in values]


def test_conditions_and_rules_combine_as_documented() -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            # Different arguments in one rule: all must hold.
            {
                "names": ["getppid"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 11,
                "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"},
                ],
            },
            # The same argument twice: alternatives (runc's reading).
            {
                "names": ["getppid"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 22,
                "args": [
                    {"index": 2, "value": 7, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"},
                ],
            },
        ],
    }
    calls = [
        ("getppid", [1, 2, 0]),
        ("getppid", [1, 3, 0]),
        ("getppid", [0, 0, 7]),
        ("getppid", [0, 0, 9]),
        ("getppid", [1, 2, 9]),  # the first matching rule decides
        ("getppid", [0, 0, 8]),
    ]
    assert kernel_verdicts(profile, calls) == [11, 0, 22, 22, 11, 0]


def test_default_action_errno_and_enosys_for_calls_newer_than_the_profile() -> None:
    allowed = sorted(
        {
            name
            for rule in seccomp_default.resolved_default_profile(["CAP_CHOWN"])["syscalls"]
            for name in rule["names"]
            if not rule.get("args") and rule["action"] == "SCMP_ACT_ALLOW"
        }
        - {"getpid"}
    )
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 13,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    }
    table = TABLES[MACHINE]
    # cachestat (451 on every architecture) is a real call of this kernel, newer than every
    # call in the tables: without the ENOSYS rule it would get the default errno.
    cachestat = 451
    assert cachestat > max(table[n] for n in allowed if n in table)
    verdicts = kernel_verdicts(profile, [("getppid", []), ("getpid", []), (cachestat, [])])
    assert verdicts == [0, 13, 38]


# --- containers --------------------------------------------------------------------------------


def _run(rootfs: Path, *command: str, options: tuple[str, ...] = ()):
    return kit_command("run", "--rm", *options, "--rootfs", str(rootfs), *command)


def _profile_option(path: Path, profile: dict) -> tuple[str, str]:
    """Write the seccomp ``profile`` to ``path``; the ``kit run`` option that uses it."""
    path.write_text(json.dumps(profile))
    return ("--security-opt", f"seccomp={path}")


@pytest.mark.usefixtures("kit_root")
def test_default_profile_refuses_unshare_and_unconfined_allows_it(busybox_rootfs: Path) -> None:
    refused = _run(busybox_rootfs, "sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true")
    assert "Seccomp:\t2" in refused.stdout
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr
    allowed = _run(
        busybox_rootfs,
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true && echo made-a-user-namespace",
        options=("--security-opt", "seccomp=unconfined"),
    )
    assert "Seccomp:\t0" in allowed.stdout
    assert "made-a-user-namespace" in allowed.stdout, allowed.stderr


@pytest.mark.usefixtures("kit_root")
def test_a_custom_profile_with_errno_ret(busybox_rootfs: Path, tmp_path: Path) -> None:
    no_mkdir = _profile_option(
        tmp_path / "no-mkdir.json",
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ],
        },
    )
    script = "mkdir /tmp/d && echo made"
    refused = _run(busybox_rootfs, "sh", "-c", script, options=no_mkdir)
    assert "Permission denied" in refused.stderr  # errno 13 = EACCES, as the profile says
    assert "made" not in refused.stdout
    assert _run(busybox_rootfs, "sh", "-c", script).stdout.strip() == "made"


@pytest.mark.usefixtures("kit_root")
def test_a_malformed_profile_stops_kit_run_before_anything_starts(
    busybox_rootfs: Path, tmp_path: Path, kit_root: Path
) -> None:
    bad = _profile_option(
        tmp_path / "bad.json",
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALOW"}],
        },
    )
    result = _run(busybox_rootfs, "true", options=bad)
    assert result.returncode == 2
    assert "syscalls[0].action: unknown action 'SCMP_ACT_ALOW'" in result.stderr
    assert not list((kit_root / "run" / "containers").glob("*/state.json"))


@pytest.mark.usefixtures("kit_root")
def test_unknown_names_are_a_stated_warning(busybox_rootfs: Path, tmp_path: Path) -> None:
    typo = _profile_option(
        tmp_path / "typo.json",
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdri"], "action": "SCMP_ACT_ERRNO"}],
        },
    )
    result = _run(busybox_rootfs, "true", options=typo)
    assert result.returncode == 0
    assert "warning" in result.stderr and "mkdri" in result.stderr


@pytest.fixture(scope="module")
def threads_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static program that starts a thread (glibc tries clone3 first, then clone)."""
    directory = tmp_path_factory.mktemp("threads")
    compile_static(
        "#include <pthread.h>\n#include <stdio.h>\n"
        "static void *work(void *arg) { return arg; }\n"
        "int main(void) { pthread_t t; int x = 7; void *out;\n"
        '  if (pthread_create(&t, NULL, work, &x) != 0) { puts("no thread"); return 1; }\n'
        '  pthread_join(t, &out); printf("thread returned %d\\n", *(int *)out); return 0; }\n',
        directory / "threads",
        "-pthread",
    )
    return directory


@pytest.mark.usefixtures("kit_root")
def test_threads_work_because_clone3_answers_enosys(
    busybox_rootfs: Path, threads_program: Path
) -> None:
    result = _run(
        busybox_rootfs,
        "/probe/threads",
        options=("-v", f"{threads_program}:/probe:ro"),
    )
    assert result.stdout.strip() == "thread returned 7", result.stderr


@pytest.mark.usefixtures("kit_root")
def test_without_no_new_privs_the_filter_goes_in_before_the_capabilities_drop(
    busybox_rootfs: Path,
) -> None:
    result = _run(
        busybox_rootfs,
        "sh",
        "-c",
        "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
        options=("--security-opt", "no-new-privileges=false", "--trace"),
    )
    assert result.returncode == 0, result.stderr
    assert "NoNewPrivs:\t0" in result.stdout and "Seccomp:\t2" in result.stdout
    seccomp_lines = [
        line for line in result.stderr.splitlines() if "seccomp(SECCOMP_SET_MODE_FILTER" in line
    ]
    assert len(seccomp_lines) == 1 and seccomp_lines[0].startswith("[capabilities]")
    # ... and before the bounding set loses CAP_SYS_ADMIN.
    trace = result.stderr
    assert trace.index("seccomp(SECCOMP_SET_MODE_FILTER") < trace.index(
        "PR_CAPBSET_DROP, CAP_SYS_ADMIN"
    )


def test_kit_seccomp_show_prints_the_arch_check_first() -> None:
    result = kit_command("seccomp", "show")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("0000") and "A = arch" in lines[0]
    assert "return KILL_PROCESS" in result.stdout
    resolved = json.loads(kit_command("seccomp", "show", "--cap-add", "SYS_ADMIN", "--json").stdout)
    assert any("mount" in rule["names"] for rule in resolved["syscalls"])


def test_kit_seccomp_check(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(seccomp_default.default_profile()))
    ok = kit_command("seccomp", "check", str(good))
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]})
    )
    refused = kit_command("seccomp", "check", str(bad))
    assert refused.returncode == 2 and "flags[0]: unknown filter flag" in refused.stderr


def test_the_syscall_layers_numbers_agree_with_the_generated_tables() -> None:
    from kit.linux.syscall import _SYSCALL_NUMBERS
    from kit.security.syscall_tables import TABLES

    for arch, numbers in _SYSCALL_NUMBERS.items():
        table = TABLES[arch]
        for name, number in numbers.items():
            assert table[name] == number, f"{arch} {name}: {number} vs {table[name]}"
