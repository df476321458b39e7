#!/usr/bin/env bash
# lab-setup.sh: make a fresh Debian/Ubuntu VM ready for a kit class.
#
#   sudo scripts/lab-setup.sh                    kit, the packages the lessons use, and the
#                                                `kit` and `kit-tutorial` commands for everyone
#   sudo scripts/lab-setup.sh --students 20      ... and accounts student1..student20, each with
#                                                its own subordinate uid/gid range (rootless)
#   sudo scripts/lab-setup.sh --users ann,bob    ... give existing accounts ranges instead
#   sudo scripts/lab-setup.sh --registry         ... and a local registry on 127.0.0.1:5000,
#                                                seeded with kit/busybox, so pull lessons work
#                                                without the network
#   sudo scripts/lab-setup.sh --allow-userns     ... and lift the distribution's restriction on
#                                                unprivileged user namespaces (Ubuntu 23.10+)
#   scripts/lab-setup.sh --dry-run [...]         say what would change, change nothing
#
# Idempotent: a second run changes nothing that is already right, downloads nothing when
# nothing is missing, and says so. kit is installed from the checkout this script lives in,
# into a virtual environment (.venv beside it, like ./tutorial does): Debian 12 and Ubuntu
# 24.04 forbid pip in the system Python (PEP 668), and a venv keeps kit's packages apart.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DRY_RUN=0
STUDENTS=0
STUDENT_PREFIX=student
USERS=""
REGISTRY=0
REGISTRY_ADDR=127.0.0.1:5000
ALLOW_USERNS=0
PACKAGES=1
VENV="$here/.venv"
BIN_DIR=/usr/local/bin
SUBID_COUNT=65536

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<EOF
Options:
  -n, --dry-run            print what would be done; change nothing (no root needed)
  --students N             create accounts ${STUDENT_PREFIX}1..N (if missing) with subuid/subgid ranges
  --student-prefix NAME    account name prefix for --students (default: $STUDENT_PREFIX)
  --users A,B,...          give these existing accounts subuid/subgid ranges
  --registry               install docker-registry, serve it on --registry-addr, seed kit/busybox
  --registry-addr H:P      where the local registry listens (default: $REGISTRY_ADDR)
  --allow-userns           set the sysctls that let ordinary users create user namespaces
  --no-packages            do not install Debian/Ubuntu packages (they are managed elsewhere)
  --venv DIR               the virtual environment for kit (default: $VENV)
  --bin-dir DIR            where the kit and kit-tutorial commands go (default: $BIN_DIR)
  -h, --help               this text
EOF
}

die() {
    echo "lab-setup: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        -n | --dry-run) DRY_RUN=1 ;;
        --students) STUDENTS=${2:?--students needs a number}; shift ;;
        --students=*) STUDENTS=${1#*=} ;;
        --student-prefix) STUDENT_PREFIX=${2:?}; shift ;;
        --users) USERS=${2:?--users needs a comma-separated list}; shift ;;
        --users=*) USERS=${1#*=} ;;
        --registry) REGISTRY=1 ;;
        --registry-addr) REGISTRY_ADDR=${2:?}; REGISTRY=1; shift ;;
        --allow-userns) ALLOW_USERNS=1 ;;
        --no-packages) PACKAGES=0 ;;
        --venv) VENV=${2:?}; shift ;;
        --bin-dir) BIN_DIR=${2:?}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
done
case "$STUDENTS" in
    '' | *[!0-9]*) die "--students needs a whole number, not '$STUDENTS'" ;;
esac

CHANGES=0

say() { echo "lab-setup: $*"; }

# Run a command that changes the system, or only print it with --dry-run.
run() {
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
        echo "would run: $*"
    else
        echo "+ $*"
        "$@"
    fi
}

# Write a file (mode $2) with the content on stdin, only when it differs from what is there.
put_file() {
    local path=$1 mode=$2 content
    content=$(cat)
    if [ -f "$path" ] && [ "$(cat "$path")" = "$content" ]; then
        say "unchanged: $path"
        return 0
    fi
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
        echo "would write: $path"
        return 0
    fi
    echo "+ write $path"
    mkdir -p "$(dirname "$path")"
    printf '%s\n' "$content" >"$path.lab-setup.tmp"
    chmod "$mode" "$path.lab-setup.tmp"
    mv -f "$path.lab-setup.tmp" "$path"
}

# ---------------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------------

[ -r /etc/os-release ] || die "no /etc/os-release: this script knows Debian and Ubuntu only"
# shellcheck disable=SC1091
. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
    *" debian "* | *" ubuntu "*) ;;
    *) die "${PRETTY_NAME:-this system} is not Debian or Ubuntu; install kit by hand (README)" ;;
esac
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "installing packages and commands for every user needs root: sudo $0 $* (or --dry-run)"
fi
say "${PRETTY_NAME:-$ID}, kernel $(uname -r), kit from $here$([ "$DRY_RUN" = 1 ] && echo ' (dry run)')"

# ---------------------------------------------------------------------------------------------
# Packages: Python (3.11 or newer, with venv), and what the lessons use
# ---------------------------------------------------------------------------------------------

# (No `| grep -q`: grep stops reading at the first match, the writer gets SIGPIPE, and
# pipefail turns that into a failure.)
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# A package the configured archives offer (Ubuntu keeps umoci and skopeo in universe).
available() {
    local policy
    policy=$(apt-cache policy "$1" 2>/dev/null)
    [[ "$policy" == *"Candidate: "* && "$policy" != *"Candidate: (none)"* ]]
}

python_ok() { "$1" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null && python_ok "$(command -v "$candidate")"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

required=(python3 python3-venv ca-certificates)
# busybox-static: a one-file userland for root filesystems; uidmap: newuidmap/newgidmap for
# rootless students' id ranges; runc, umoci, skopeo: the tools lessons compare kit with;
# podman: the engine lesson 12 drives kit with, as its OCI runtime.
optional=(busybox-static uidmap runc umoci skopeo podman)
if [ "$REGISTRY" = 1 ]; then optional+=(docker-registry); fi

install_packages() {
    # $@: packages; optional ones (listed in $optional) may be missing from the archives.
    local wanted=() package
    export DEBIAN_FRONTEND=noninteractive
    run apt-get update -q
    for package in "$@"; do
        # In a dry run the package lists may be stale: list everything that is missing.
        if [ "$DRY_RUN" = 1 ] || available "$package"; then
            wanted+=("$package")
        elif [[ " ${optional[*]} " == *" $package "* ]]; then
            say "warning: no package $package here; lessons that need it will say so"
        else
            die "no package $package in the configured archives (Ubuntu: enable universe)"
        fi
    done
    if [ "${#wanted[@]}" -gt 0 ]; then
        run apt-get install -y -q --no-install-recommends "${wanted[@]}"
    fi
}

if [ "$PACKAGES" = 1 ]; then
    missing=()
    for package in "${required[@]}" "${optional[@]}"; do
        installed "$package" || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        install_packages "${missing[@]}"
    else
        say "packages: all installed (${required[*]} ${optional[*]})"
    fi
    # Ubuntu 22.04: python3 is 3.10; 3.11 is packaged beside it (universe).
    if ! find_python >/dev/null && [ "$DRY_RUN" = 0 ]; then
        say "python3 is $(python3 -V 2>&1); kit needs 3.11 or newer"
        install_packages python3.11 python3.11-venv
    fi
fi

PYTHON=$(find_python) || {
    [ "$DRY_RUN" = 1 ] || die "no Python 3.11+ with venv; install python3.11 and python3.11-venv"
    PYTHON=python3
}
say "python: $PYTHON"

# ---------------------------------------------------------------------------------------------
# kit, in a virtual environment, and the commands every user runs
# ---------------------------------------------------------------------------------------------

stamp="$VENV/.kit-lab-setup"
want_stamp="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1) $here"
if [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python" \
    && [ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ] \
    && "$VENV/bin/python" -c 'import kit, textual' 2>/dev/null; then
    say "unchanged: kit in $VENV"
else
    if ! { [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python"; }; then
        run "$PYTHON" -m venv "$VENV"
    fi
    # compat mode: a plain path entry instead of an import hook (kit starts faster), and the
    # checkout stays the source, so `git pull` updates the class's kit.
    run "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --config-settings editable_mode=compat -e "$here"
    if [ "$DRY_RUN" = 0 ]; then
        echo "$want_stamp" >"$stamp"
    fi
fi
# Students cannot write __pycache__ into a checkout root owns: compile once, here.
if [ "$DRY_RUN" = 0 ]; then
    "$VENV/bin/python" -m compileall -q "$here/kit" "$here/lessons" >/dev/null || true
    if [ -f "$here/tui.py" ]; then
        "$VENV/bin/python" -m compileall -q "$here/tui.py" >/dev/null || true
    fi
fi

put_file "$BIN_DIR/kit" 755 <<EOF
#!/bin/sh
# kit: the container engine (installed by $here/scripts/lab-setup.sh)
exec "$VENV/bin/python" -m kit "\$@"
EOF

put_file "$BIN_DIR/kit-tutorial" 755 <<EOF
#!/bin/sh
# kit-tutorial: the lessons (installed by $here/scripts/lab-setup.sh).
#   kit-tutorial            the terminal app          sudo kit-tutorial   in root mode
#   kit-tutorial --plain    the same lessons as plain text
if [ -f "$here/tui.py" ]; then
    exec "$VENV/bin/python" "$here/tui.py" "\$@"
fi
# Before the app exists: the plain runner.
[ "\${1:-}" = --plain ] && shift
exec "$VENV/bin/python" -m lessons "\$@"
EOF

# Every student runs kit from this checkout: each directory above it must be searchable.
dir=$here
while [ "$dir" != / ]; do
    if [ "$(( $(stat -c '%a' "$dir") % 10 & 1 ))" = 0 ]; then
        say "warning: $dir is not searchable by other users; students cannot run kit from $here" \
            "(chmod o+x $dir, or clone kit to /opt/kit)"
    fi
    dir=$(dirname "$dir")
done

# ---------------------------------------------------------------------------------------------
# Students: accounts and subordinate id ranges for rootless mode
# ---------------------------------------------------------------------------------------------

has_subids() { grep -q "^$1:" /etc/subuid 2>/dev/null && grep -q "^$1:" /etc/subgid 2>/dev/null; }

# The first id after every range in /etc/subuid and /etc/subgid, from 100000: ranges never
# overlap, so no two students share an id inside their containers.
# Sets $range_start; a dry run (which writes nothing) still hands out distinct ranges.
next_subid=0
next_range() {
    if [ "$next_subid" = 0 ]; then
        next_subid=$(cat /etc/subuid /etc/subgid 2>/dev/null \
            | awk -F: 'NF == 3 { end = $2 + $3; if (end > max) max = end } END { print max + 0 }')
        if [ "$next_subid" -lt 100000 ]; then next_subid=100000; fi
    fi
    range_start=$next_subid
    next_subid=$((next_subid + SUBID_COUNT))
}

students=()
for i in $(seq 1 "$STUDENTS"); do students+=("$STUDENT_PREFIX$i"); done
IFS=, read -r -a named <<<"$USERS"
for name in "${students[@]}"; do
    if id -u "$name" >/dev/null 2>&1; then
        say "unchanged: account $name"
    else
        # useradd also gives the account subordinate ids when /etc/subuid exists (shadow 4.x)
        run useradd --create-home --shell /bin/bash "$name"
    fi
done
for name in "${named[@]}"; do
    if [ -n "$name" ] && ! id -u "$name" >/dev/null 2>&1; then
        die "no account $name (--users names existing accounts; --students creates them)"
    fi
done
for name in "${students[@]}" "${named[@]}"; do
    [ -n "$name" ] || continue
    if has_subids "$name"; then
        say "subordinate ids: $(grep "^$name:" /etc/subuid | head -1)"
    else
        next_range
        run usermod --add-subuids "$range_start-$((range_start + SUBID_COUNT - 1))" \
            --add-subgids "$range_start-$((range_start + SUBID_COUNT - 1))" "$name"
    fi
done

# ---------------------------------------------------------------------------------------------
# User namespaces for ordinary users (rootless students)
# ---------------------------------------------------------------------------------------------

sysctl_file=/etc/sysctl.d/60-kit.conf
sysctl_lines=()
apparmor=$(cat /proc/sys/kernel/apparmor_restrict_unprivileged_userns 2>/dev/null || echo)
clone=$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo)
if [ "$apparmor" = 1 ]; then
    # Ubuntu 23.10+: unshare(CLONE_NEWUSER) works but the namespace gets no capabilities
    # unless an AppArmor profile allows `userns` for the program; kit's program is python3.
    sysctl_lines+=("kernel.apparmor_restrict_unprivileged_userns=0")
fi
if [ "$clone" = 0 ]; then
    sysctl_lines+=("kernel.unprivileged_userns_clone=1") # Debian 10 and older
fi
if [ "${#sysctl_lines[@]}" -gt 0 ]; then
    if [ "$ALLOW_USERNS" = 1 ]; then
        printf '%s\n' "# kit lab: ordinary users may create user namespaces (rootless students)" \
            "${sysctl_lines[@]}" | put_file "$sysctl_file" 644
        for line in "${sysctl_lines[@]}"; do run sysctl -w "$line"; done
    else
        say "note: ${sysctl_lines[*]} is needed for rootless students (root mode works):" \
            "run again with --allow-userns"
    fi
else
    say "user namespaces: no distribution switch restricts them here"
fi

# ---------------------------------------------------------------------------------------------
# A local registry, so lessons that pull images need no network in class
# ---------------------------------------------------------------------------------------------

if [ "$REGISTRY" = 1 ]; then
    put_file /etc/kit/registry.yml 644 <<EOF
# The kit lab's local registry (scripts/lab-setup.sh --registry): no authentication, on
# loopback only. Start or seed it by hand with: kit-registry start|seed|status|stop
version: 0.1
storage:
  filesystem:
    rootdirectory: /var/lib/kit-registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    put_file "$BIN_DIR/kit-registry" 755 <<EOF
#!/bin/sh
# kit-registry: the lab's local registry (installed by $here/scripts/lab-setup.sh)
exec "$here/scripts/lab-registry.sh" "\$@"
EOF
    if [ "$DRY_RUN" = 0 ]; then
        "$here/scripts/lab-registry.sh" image # the seed image, built offline from busybox
    else
        echo "would build: the seed image kit/busybox (scripts/lab-registry.sh image)"
    fi
    if [ -d /run/systemd/system ]; then
        put_file /etc/systemd/system/kit-registry.service 644 <<EOF
[Unit]
Description=kit lab: local registry on $REGISTRY_ADDR
After=network.target

[Service]
ExecStart=/usr/bin/docker-registry serve /etc/kit/registry.yml
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
        # Debian's own docker-registry unit wants port 5000 too (with password auth).
        if systemctl is-enabled --quiet docker-registry 2>/dev/null; then
            run systemctl disable --now docker-registry
        fi
        run systemctl daemon-reload
        systemctl is-enabled --quiet kit-registry 2>/dev/null || run systemctl enable kit-registry
        systemctl is-active --quiet kit-registry || run systemctl start kit-registry
        if [ "$DRY_RUN" = 0 ]; then
            "$here/scripts/lab-registry.sh" seed
        fi
    else
        say "no systemd here: the registry is not started; start it with: kit-registry start"
    fi
fi

# ---------------------------------------------------------------------------------------------

if [ "$DRY_RUN" = 1 ]; then
    say "dry run: $CHANGES change(s) would be made"
    exit 0
fi
if [ "$CHANGES" = 0 ]; then
    say "nothing to change: this machine is set up"
else
    say "done: $CHANGES change(s)"
fi
say "students run: kit-tutorial (rootless) or sudo kit-tutorial (root mode); check: kit doctor"
