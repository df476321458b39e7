"""Each command module declares the commands it registers (``COMMANDS``), so that ``kit CMD``
imports that module alone: a module whose list drifted from what it registers would make every
kit command build every parser (slower starts) or hide its commands."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from kit.cli import COMMAND_MODULES


def test_each_module_declares_exactly_the_commands_it_registers() -> None:
    seen: list[str] = []
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        subparsers = argparse.ArgumentParser().add_subparsers()
        module.register(subparsers)
        assert sorted(subparsers.choices) == sorted(module.COMMANDS), name
        seen += module.COMMANDS
    assert len(seen) == len(set(seen)), "two modules declare the same command"


def test_kit_run_imports_only_the_modules_of_its_options() -> None:
    code = (
        "import sys; from kit.cli import COMMAND_MODULES, build_parser; "
        "build_parser(['run', '--rm', 'x']); "
        "print(' '.join(m for m in COMMAND_MODULES if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # kit run's parser also takes -d from kit.cli.lifecycle and --bundle's options from
    # kit.cli.oci (both import only the standard library at the top); nothing else.
    assert done.stdout.split() == ["kit.cli.run", "kit.cli.lifecycle", "kit.cli.oci"]
