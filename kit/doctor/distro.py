"""What differs between distributions: package names, how to set a sysctl or a boot
parameter, which Python to install, and the defaults that block lessons.

A fix is only useful when it is exact, so :class:`Host` knows the distribution (family, id,
version) and whether kit already runs as root, and spells out the commands for it. The
decisions that depend on the distribution's defaults live here as pure functions of
os-release text and sysctl values, tested on samples of many distributions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kit.doctor.parsing import distro_family, parse_os_release, version_tuple
from kit.doctor.readers import read

#: Package names per distribution family.
PACKAGES: dict[str, dict[str, str]] = {
    "busybox": {
        "debian": "busybox-static",
        "fedora": "busybox",
        "arch": "busybox",
        "alpine": "busybox-static",
        "suse": "busybox-static",
    },
    "runc": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "runc"),
    "umoci": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "umoci"),
    "skopeo": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "skopeo"),
    "podman": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "podman"),
    "tmux": dict.fromkeys(("debian", "fedora", "arch", "alpine", "suse"), "tmux"),
    "docker-registry": {
        "debian": "docker-registry",
        "fedora": "docker-distribution",
        "arch": "docker-distribution",
        "alpine": "docker-registry",
    },
    "uidmap": {
        "debian": "uidmap",
        "fedora": "shadow-utils",
        "arch": "shadow",
        "alpine": "shadow-uidmap",
        "suse": "shadow",
    },
}

_INSTALLERS = {
    "debian": "apt install",
    "fedora": "dnf install",
    "arch": "pacman -S",
    "alpine": "apk add",
    "suse": "zypper install",
}

#: Where kit's sysctl settings are kept across reboots. sysctl.d files apply in name order,
#: so 60- wins over a distribution default such as Ubuntu's 10-apparmor.conf.
SYSCTL_FILE = "/etc/sysctl.d/60-kit.conf"


@dataclass(frozen=True)
class Host:
    """What fix commands depend on: the distribution and whether we already are root.

    ``id`` and ``version`` are os-release's ``ID`` and ``VERSION_ID`` (``ubuntu``, ``24.04``).
    """

    family: str
    pretty_name: str
    root: bool
    id: str = ""
    version: str = ""

    @classmethod
    def from_os_release(cls, text: str, *, root: bool) -> Host:
        """A host described by the text of an os-release file."""
        release = parse_os_release(text)
        return cls(
            family=distro_family(release),
            pretty_name=release.get("PRETTY_NAME", "this Linux"),
            root=root,
            id=release.get("ID", ""),
            version=release.get("VERSION_ID", ""),
        )

    @classmethod
    def detect(cls) -> Host:
        """This machine."""
        text = read("/etc/os-release") or read("/usr/lib/os-release") or ""
        return cls.from_os_release(text, root=os.geteuid() == 0)

    def is_(self, ident: str, at_least: tuple[int, ...] = ()) -> bool:
        """Whether this is distribution ``ident`` (os-release ID) at ``at_least`` or newer."""
        return self.id == ident and version_tuple(self.version) >= at_least

    # -- commands ----------------------------------------------------------------------------

    def as_root(self, command: str) -> str:
        """Prefix ``sudo`` when not already root."""
        return command if self.root else f"sudo {command}"

    def install(self, tool: str) -> str:
        """The exact install command for ``tool`` on this distribution."""
        installer = _INSTALLERS.get(self.family)
        package = PACKAGES.get(tool, {}).get(self.family)
        if installer and package:
            return self.as_root(f"{installer} {package}")
        return f"install the {tool} package with your distribution's package manager"

    def sysctl(self, key: str, value: str | int) -> str:
        """Set a sysctl now and keep it after reboot."""
        now = self.as_root(f"sysctl -w {key}={value}")
        keep = self.as_root(f"sh -c 'echo {key}={value} >> {SYSCTL_FILE}'")
        return f"{now} (to keep it after reboot: {keep})"

    def kernel_parameter(self, parameter: str) -> str:
        """Add a parameter to the kernel's command line for every boot."""
        if self.family == "fedora":
            return f"{self.as_root(f'grubby --update-kernel=ALL --args={parameter}')}, then reboot"
        regenerate = {
            "debian": "update-grub",
            "arch": "grub-mkconfig -o /boot/grub/grub.cfg",
            "suse": "grub2-mkconfig -o /boot/grub2/grub.cfg",
        }.get(self.family)
        if regenerate:
            return (
                f"add {parameter} to GRUB_CMDLINE_LINUX in /etc/default/grub, then run "
                f"{self.as_root(regenerate)} and reboot"
            )
        return f"add {parameter} to the kernel command line in your boot loader, then reboot"

    def load_module(self, module: str) -> str:
        """Load a kernel module now and at every boot."""
        now = self.as_root(f"modprobe {module}")
        keep = self.as_root(f"sh -c 'echo {module} > /etc/modules-load.d/kit-{module}.conf'")
        return f"{now} (to load it at every boot: {keep})"

    def newer_kernel(self, version: str) -> str:
        """How to get a kernel of at least ``version``."""
        if self.id == "ubuntu":
            package = f"linux-generic-hwe-{self.version or '22.04'}"
            return (
                f"boot Linux {version} or newer: the HWE kernel "
                f"({self.as_root('apt install ' + package)}), then reboot"
            )
        if self.family == "debian":
            return (
                f"boot Linux {version} or newer (Debian 12: enable bookworm-backports, then "
                f"{self.as_root('apt install -t bookworm-backports linux-image-amd64')}), "
                "then reboot"
            )
        return f"boot Linux {version} or newer from your distribution, then reboot"

    def python_fix(self) -> str:
        """How to get Python 3.11 or newer here (kit's minimum)."""
        if self.is_("ubuntu") and version_tuple(self.version) < (23, 4):
            # Ubuntu 22.04 ships 3.10 as python3 and 3.11 beside it in universe.
            return (
                f"{self.as_root('apt install python3.11 python3.11-venv')}, then "
                "scripts/lab-setup.sh (it picks python3.11) or python3.11 -m venv .venv"
            )
        if self.is_("debian") and version_tuple(self.version) < (12,):
            return (
                "Debian 11 and older have no Python 3.11 package: upgrade to Debian 12, or "
                "install Python 3.11 with pyenv or uv and make a venv with it"
            )
        if self.family == "debian":
            return f"{self.as_root('apt install python3 python3-venv')}, then scripts/lab-setup.sh"
        if self.family == "fedora":
            return self.as_root("dnf install python3.11")
        return "install Python 3.11 or newer and reinstall kit with it: python3.11 -m pip install ."

    def cgroup_v2_fix(self, *, wsl: bool = False) -> str:
        """Boot with the unified (v2) cgroup hierarchy only."""
        if wsl:
            return (
                "in %UserProfile%\\.wslconfig under [wsl2] set kernelCommandLine = "
                "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1, then wsl --shutdown"
            )
        return self.kernel_parameter("systemd.unified_cgroup_hierarchy=1")

    def delegate_fix(self, controllers: list[str] | tuple[str, ...]) -> str:
        """Let systemd hand cgroup controllers to each user's own cgroup (rootless limits)."""
        wanted = " ".join(sorted({*controllers, "memory", "pids"}))
        drop_in = "/etc/systemd/system/user@.service.d/kit-delegate.conf"
        return (
            f"{self.as_root('mkdir -p /etc/systemd/system/user@.service.d')} && "
            + self.as_root(f"sh -c 'printf \"[Service]\\nDelegate={wanted}\\n\" > {drop_in}'")
            + f" && {self.as_root('systemctl daemon-reload')}, then log out and in again"
        )


#: When kit runs inside a container whose engine took CAP_SYS_ADMIN away or applied a seccomp
#: profile: what to give the outer container.
CONTAINER_FIX = (
    "run the outer container privileged: docker run --privileged (or --cap-add SYS_ADMIN "
    "--security-opt seccomp=unconfined --security-opt apparmor=unconfined); podman run "
    "--privileged; kit run --cap-add ALL --security-opt seccomp=unconfined --security-opt "
    "systempaths=unconfined --security-opt no-new-privileges=false"
)


# ----------------------------------------------------------------------------------------------
# User namespaces: the distribution switches that forbid them
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    """Something that stops a feature, why, and the exact fix."""

    reason: str
    fix: str


def userns_blockers(sysctls: dict[str, int | None], host: Host) -> list[Blocker]:
    """The sysctls that stop an unprivileged user from using a user namespace, first the
    one to change first. ``sysctls`` maps names to values, None where the kernel lacks one.

    Root (with CAP_SYS_ADMIN in the first user namespace) is never blocked by these: they
    concern students running rootless.
    """
    found: list[Blocker] = []
    if sysctls.get("user.max_user_namespaces") == 0:
        found.append(
            Blocker(
                "user.max_user_namespaces is 0: nobody may create a user namespace (a "
                "hardening default on some RHEL/CentOS 7 systems)",
                host.sysctl("user.max_user_namespaces", 15000),
            )
        )
    if sysctls.get("kernel.unprivileged_userns_clone") == 0:
        found.append(
            Blocker(
                "kernel.unprivileged_userns_clone is 0: a Debian/Ubuntu kernel switch that "
                "reserves user namespaces to root (the default before Debian 11)",
                host.sysctl("kernel.unprivileged_userns_clone", 1),
            )
        )
    if sysctls.get("kernel.apparmor_restrict_unprivileged_userns") == 1:
        where = (
            f"{host.pretty_name} restricts them by default (Ubuntu 23.10 and later)"
            if host.is_("ubuntu", (23, 10))
            else "this kernel restricts them (an Ubuntu 23.10+ kernel feature)"
        )
        found.append(
            Blocker(
                "kernel.apparmor_restrict_unprivileged_userns is 1: "
                + where
                + ". unshare(CLONE_NEWUSER) still succeeds, but unless an AppArmor profile "
                "allows `userns` for the program, the new namespace holds no capabilities, so "
                "every mount in it fails with EPERM. (A per-program profile is the finer fix, "
                "but kit's program is python3, so it would free every Python program anyway)",
                host.sysctl("kernel.apparmor_restrict_unprivileged_userns", 0),
            )
        )
    return found
