# Sourced by ./tutorial and ./run-tests: choose the Python that runs kit, and install kit into it.
#
# Uses the machine's python3 when pip may install into it; where the distribution forbids
# that (PEP 668, e.g. Debian 12 and Ubuntu 24.04's system Python), a virtual environment in
# .venv instead. Sets $PYTHON.

kit_python_env() {
    local extras="$1"
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ -x "$here/.venv/bin/python" ]; then
        PYTHON="$here/.venv/bin/python"
    elif python3 -m pip --version >/dev/null 2>&1 && ! python3 - <<'PY' 2>/dev/null
import sys, sysconfig, os
marker = os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")
sys.exit(0 if os.path.exists(marker) and sys.prefix == sys.base_prefix else 1)
PY
    then
        PYTHON=$(python3 -c 'import sys; print(sys.executable)')
    else
        python3 -m venv "$here/.venv"
        PYTHON="$here/.venv/bin/python"
    fi
    # compat mode: a plain path entry instead of an import hook, which keeps `kit` fast to start.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        --config-settings editable_mode=compat -e "$here$extras"
}
