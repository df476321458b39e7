"""Class time needs no network: every lesson of the catalog passes in a network namespace
with nothing but a loopback device (``unshare --net``), so nothing a lesson does may download.

(The lab test, tests/lab/test_lab_vm.py, does the same on a freshly set-up Debian VM, and pulls
from the lab's local registry there.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lessons.catalog import all_lessons

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("kit_root")

#: Runs inside the new network namespace: show the interfaces, prove the network is out of
#: reach, then run every lesson.
SCRIPT = """
echo "interfaces: $(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev | xargs)" >&2
if "$0" -c 'import socket; socket.create_connection(("pypi.org", 443), 5)' 2>/dev/null; then
    echo "the network is reachable" >&2
    exit 99
fi
exec "$0" "$@"
"""


def test_every_lesson_passes_without_a_network() -> None:
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", SCRIPT, sys.executable, "-m", "lessons", "all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert "interfaces: lo" in done.stderr.splitlines()[0], done.stderr
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summaries = re.findall(r"══ lesson (\d+): (\d+)/(\d+) steps passed", done.stdout)
    assert [int(number) for number, _, _ in summaries] == [x.number for x in all_lessons()]
    for number, passed, total in summaries:
        assert passed == total, f"lesson {number}: {passed}/{total} without a network"
