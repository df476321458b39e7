# Sourced by ./tutorial and ./run-tests: choose the Python that runs kit, and install kit into it.
#
# Uses the machine's python3 when pip may install into it; where the distribution forbids
# that (PEP 668, e.g. Debian 12 and Ubuntu 24.04's system Python), a virtual environment in
# .venv instead. Sets $PYTHON. On a fresh Debian/Ubuntu it first installs what is missing:
# python3 itself, and python3-venv (Debian ships venv's pip bootstrap, ensurepip, apart).

kit_apt_install() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        echo "kit: this needs the package(s) $*; install them (e.g. sudo apt-get install $*)" \
             "and run this again" >&2
        exit 2
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

kit_python_env() {
    local extras="$1"
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    command -v python3 >/dev/null || kit_apt_install python3
    # The first Python 3.11+ (Ubuntu 22.04's python3 is 3.10; python3.11 may stand beside it).
    local py="" candidate
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            py=$candidate
            break
        fi
    done
    if [ -z "$py" ]; then
        echo "kit: python3 is $(python3 -V 2>&1); kit needs Python 3.11 or newer" \
             "(Ubuntu 22.04: sudo apt-get install python3.11 python3.11-venv)" >&2
        exit 2
    fi
    # A .venv left half-made (no pip: venv ran without ensurepip) is made again.
    if [ -e "$here/.venv" ] && ! "$here/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$here/.venv"
    fi
    if [ -x "$here/.venv/bin/python" ]; then
        PYTHON="$here/.venv/bin/python"
    elif "$py" -m pip --version >/dev/null 2>&1 && ! "$py" - <<'PY' 2>/dev/null
import sys, sysconfig, os
marker = os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")
sys.exit(0 if os.path.exists(marker) and sys.prefix == sys.base_prefix else 1)
PY
    then
        PYTHON=$("$py" -c 'import sys; print(sys.executable)')
    else
        if ! "$py" -m venv "$here/.venv" >/dev/null 2>&1; then
            rm -rf "$here/.venv"
            kit_apt_install "$py-venv"  # python3-venv, or python3.11-venv beside it
            "$py" -m venv "$here/.venv"
        fi
        PYTHON="$here/.venv/bin/python"
    fi
    # compat mode: a plain path entry instead of an import hook, which keeps `kit` fast to start.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check \
        --config-settings editable_mode=compat -e "$here$extras"
}
