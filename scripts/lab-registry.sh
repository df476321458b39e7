#!/usr/bin/env bash
# lab-registry.sh (installed as `kit-registry` by lab-setup.sh --registry): the lab's local
# registry, so lessons that pull images need no network in class.
#
#   kit-registry image    build the seed image kit/busybox:latest as an OCI layout, offline,
#                         from this machine's busybox-static (umoci)
#   kit-registry start    start the registry (systemd's kit-registry.service, or, where there
#                         is no systemd, in the background), then seed it
#   kit-registry seed     push the seed image into the running registry (skopeo)
#   kit-registry status   does a registry answer? which repositories does it hold?
#   kit-registry stop     stop it
#
# The registry serves /etc/kit/registry.yml (written by lab-setup.sh): no authentication, on
# loopback only. Lessons pull from it as localhost:PORT/kit/busybox:latest.
set -euo pipefail

CONFIG=${KIT_REGISTRY_CONFIG:-/etc/kit/registry.yml}
SEED=${KIT_REGISTRY_SEED:-/var/lib/kit-lab/seed}
PIDFILE=${KIT_REGISTRY_PIDFILE:-/run/kit-registry.pid}
LOG=${KIT_REGISTRY_LOG:-/var/log/kit-registry.log}
IMAGE=kit/busybox:latest
APPLETS="sh ls cat echo mkdir rm mount umount ps id hostname sleep uname env grep wc"

die() {
    echo "kit-registry: $*" >&2
    exit 2
}

# The address from the config (http.addr), e.g. 127.0.0.1:5000.
addr() {
    [ -r "$CONFIG" ] || die "no $CONFIG: run lab-setup.sh --registry first"
    awk '/^http:/ { inside = 1; next } inside && $1 == "addr:" { print $2; exit }' "$CONFIG"
}

answers() {
    python3 - "$(addr)" <<'PY' 2>/dev/null
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=2)
except urllib.error.HTTPError as error:
    sys.exit(0 if error.code == 401 else 1)
except OSError:
    sys.exit(1)
PY
}

wait_up() {
    for _ in $(seq 1 50); do
        answers && return 0
        sleep 0.2
    done
    die "no registry answers at $(addr) (log: $LOG, or journalctl -u kit-registry)"
}

image() {
    if [ -f "$SEED/index.json" ] && umoci stat --image "$SEED:latest" >/dev/null 2>&1; then
        echo "kit-registry: unchanged: seed image in $SEED"
        return 0
    fi
    local busybox work="$SEED.tmp"
    busybox=$(command -v busybox) || die "busybox is missing (apt install busybox-static)"
    rm -rf "$SEED" "$work"
    mkdir -p "$work"
    umoci init --layout "$work/layout"
    umoci new --image "$work/layout:latest"
    umoci unpack --image "$work/layout:latest" "$work/bundle" >/dev/null
    mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/tmp"
    cp "$busybox" "$work/bundle/rootfs/bin/busybox"
    for applet in $APPLETS; do ln -s busybox "$work/bundle/rootfs/bin/$applet"; done
    # repack first: it builds on the manifest the bundle was unpacked from
    umoci repack --image "$work/layout:latest" "$work/bundle"
    umoci config --image "$work/layout:latest" --config.cmd /bin/sh \
        --config.env PATH=/bin --author "kit lab-setup"
    umoci gc --layout "$work/layout"
    mv "$work/layout" "$SEED"
    rm -rf "$work"
    echo "kit-registry: built the seed image in $SEED (busybox from $busybox)"
}

seed() {
    wait_up
    [ -f "$SEED/index.json" ] || image
    if skopeo inspect --tls-verify=false "docker://$(addr)/$IMAGE" >/dev/null 2>&1; then
        echo "kit-registry: unchanged: $(addr)/$IMAGE"
        return 0
    fi
    skopeo copy --quiet --dest-tls-verify=false "oci:$SEED:latest" "docker://$(addr)/$IMAGE"
    echo "kit-registry: pushed $(addr)/$IMAGE"
}

start() {
    if answers; then
        echo "kit-registry: already answering at $(addr)"
    elif [ -d /run/systemd/system ] && [ -f /etc/systemd/system/kit-registry.service ]; then
        systemctl start kit-registry
    else
        # No systemd (a container, a minimal VM): run it in the background, in its own session.
        mkdir -p "$(dirname "$LOG")"
        setsid docker-registry serve "$CONFIG" >>"$LOG" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
    fi
    seed
}

stop() {
    if [ -d /run/systemd/system ] && systemctl is-active --quiet kit-registry 2>/dev/null; then
        systemctl stop kit-registry
    elif [ -f "$PIDFILE" ]; then
        kill "$(cat "$PIDFILE")" 2>/dev/null || true
        rm -f "$PIDFILE"
    fi
    echo "kit-registry: stopped"
}

status() {
    if answers; then
        echo "kit-registry: answering at $(addr)"
        python3 -c "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())" \
            "http://$(addr)/v2/_catalog"
    else
        echo "kit-registry: nothing answers at $(addr)"
        return 1
    fi
}

case "${1:-}" in
    image | seed | start | stop | status) "$1" ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
