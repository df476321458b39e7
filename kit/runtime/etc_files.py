"""/etc/hostname, /etc/hosts and /etc/resolv.conf: per container, never written into the image.

Programs read who they are and how to find other machines from three files in /etc. They
differ per container (each has its own hostname) while the root filesystem is shared by many
containers, so, like Docker, kit writes them into the *container's* directory and bind-mounts
each over the root filesystem's file:

* ``hostname``: the container's hostname;
* ``hosts``: localhost names (the host's own file with ``--net host``);
* ``resolv.conf``: the host's DNS settings, minus nameservers on 127.0.0.0/8 or ::1, which
  would mean the *container's* loopback in a network namespace of its own (Docker then
  falls back to public resolvers; kit does too).

The mounts are read-only when the root filesystem is (``--read-only``). A mount the user asks
for at one of these paths wins over kit's.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from kit.spec import Mount, Spec

#: What Docker writes into a container's /etc/hosts.
DEFAULT_HOSTS = """\
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""

FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def container_resolv_conf(host_text: str, *, host_network: bool) -> str:
    """The host's resolv.conf as a container with its own network namespace should see it."""
    if host_network:
        return host_text
    lines = []
    servers = 0
    for line in host_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if _loopback(words[1]):
                continue
            servers += 1
        lines.append(line)
    if servers == 0:
        lines += [f"nameserver {address}" for address in FALLBACK_NAMESERVERS]
    return "\n".join(lines) + "\n"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""


def write_etc_files(spec: Spec, directory: Path, *, host_network: bool) -> dict[str, Path]:
    """Write the three files into ``directory``; returns container path -> host file."""
    import socket

    directory.mkdir(parents=True, exist_ok=True)
    hostname = spec.hostname or socket.gethostname()
    contents = {
        "/etc/hostname": hostname + "\n",
        "/etc/hosts": _read("/etc/hosts") if host_network else DEFAULT_HOSTS,
        "/etc/resolv.conf": container_resolv_conf(
            _read("/etc/resolv.conf"), host_network=host_network
        ),
    }
    written = {}
    for destination, text in contents.items():
        path = directory / destination.rsplit("/", 1)[1]
        path.write_text(text)
        path.chmod(0o644)
        written[destination] = path
    return written


def add_etc_mounts(spec: Spec, directory: Path, *, host_network: bool) -> None:
    """Write the files and add their bind mounts, unless the user mounted something there."""
    taken = {m.destination for m in spec.mounts}
    files = write_etc_files(spec, directory, host_network=host_network)
    for destination, path in files.items():
        if destination in taken:
            continue
        options = ["rbind", "rprivate"] + (["ro"] if spec.root.readonly else [])
        spec.mounts.append(Mount(destination, "bind", str(path), options))
