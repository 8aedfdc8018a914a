"""The system libraries Qt's xcb platform plugin needs on Linux, checked before Qt loads.

On a fresh Debian or Ubuntu desktop `libxcb-cursor0` (and a few more) are missing and Qt says only "could not load
the Qt platform plugin \"xcb\"" before aborting. main.py calls `xcb_problem()` on the app path: when Qt would pick
xcb (Linux, DISPLAY set, no Wayland session, no QT_QPA_PLATFORM override) each library is loaded the way Qt loads it
(dlopen by soname); the missing ones come back as one install command. No Qt import here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# The packages holding each library, per distribution family, as linked by PySide6 6.x's libqxcb.so and
# libQt6XcbQpa.so (`ldd`). Fedora/Arch/openSUSE group several of them in one package.
_PACKAGE_TABLE = """
soname                     debian/ubuntu          fedora                 arch                   opensuse
libxcb.so.1                libxcb1                libxcb                 libxcb                 libxcb1
libX11-xcb.so.1            libx11-xcb1            libX11-xcb             libx11                 libX11-xcb1
libxcb-cursor.so.0         libxcb-cursor0         xcb-util-cursor        xcb-util-cursor        libxcb-cursor0
libxcb-icccm.so.4          libxcb-icccm4          xcb-util-wm            xcb-util-wm            libxcb-icccm4
libxcb-image.so.0          libxcb-image0          xcb-util-image         xcb-util-image         libxcb-image0
libxcb-keysyms.so.1        libxcb-keysyms1        xcb-util-keysyms       xcb-util-keysyms       libxcb-keysyms1
libxcb-randr.so.0          libxcb-randr0          libxcb                 libxcb                 libxcb-randr0
libxcb-render-util.so.0    libxcb-render-util0    xcb-util-renderutil    xcb-util-renderutil    libxcb-render-util0
libxcb-shape.so.0          libxcb-shape0          libxcb                 libxcb                 libxcb-shape0
libxcb-shm.so.0            libxcb-shm0            libxcb                 libxcb                 libxcb-shm0
libxcb-sync.so.1           libxcb-sync1           libxcb                 libxcb                 libxcb-sync1
libxcb-util.so.1           libxcb-util1           xcb-util               xcb-util               libxcb-util1
libxcb-xfixes.so.0         libxcb-xfixes0         libxcb                 libxcb                 libxcb-xfixes0
libxcb-xkb.so.1            libxcb-xkb1            libxcb                 libxcb                 libxcb-xkb1
libxkbcommon.so.0          libxkbcommon0          libxkbcommon           libxkbcommon           libxkbcommon0
libxkbcommon-x11.so.0      libxkbcommon-x11-0     libxkbcommon-x11       libxkbcommon-x11       libxkbcommon-x11-0
"""
# soname -> (Debian/Ubuntu package, Fedora package, Arch package, openSUSE package)
XCB_LIBRARIES: dict[str, tuple[str, str, str, str]] = {
    soname: (debian, fedora, arch, opensuse)
    for soname, debian, fedora, arch, opensuse in (line.split() for line in _PACKAGE_TABLE.strip().splitlines()[1:])
}
# Distribution family (from /etc/os-release ID and ID_LIKE) -> (column in XCB_LIBRARIES, install command).
_INSTALLERS = {
    "debian": (0, "sudo apt install"),
    "ubuntu": (0, "sudo apt install"),
    "fedora": (1, "sudo dnf install"),
    "rhel": (1, "sudo dnf install"),
    "arch": (2, "sudo pacman -S --needed"),
    "suse": (3, "sudo zypper install"),
}


def qt_would_use_xcb(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will pick its xcb plugin: Linux, an X display, no Wayland session, no QT_QPA_PLATFORM."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    return (platform.startswith("linux") and bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")
            and not env.get("QT_QPA_PLATFORM"))


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(load: Callable[[str], bool] = _loadable) -> list[str]:
    """The sonames of XCB_LIBRARIES that cannot be loaded."""
    return [name for name in XCB_LIBRARIES if not load(name)]


def _os_release() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read(64 * 1024)
        except OSError:
            continue
    return ""


def install_command(missing: list[str], os_release: str | None = None) -> str:
    """The one command that installs the packages holding `missing`, for this distribution (apt by default)."""
    text = _os_release() if os_release is None else os_release
    ids: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("ID", "ID_LIKE"):
            ids += value.strip().strip('"').lower().split()
    column, command = next((_INSTALLERS[i] for i in ids if i in _INSTALLERS), _INSTALLERS["debian"])
    packages = sorted(dict.fromkeys(XCB_LIBRARIES[name][column] for name in missing))
    return f"{command} {' '.join(packages)}"


def xcb_problem(env: Mapping[str, str] | None = None, load: Callable[[str], bool] = _loadable,
                os_release: str | None = None, platform: str | None = None) -> str | None:
    """None when Qt will not use xcb or every library it needs loads; else the message to print."""
    if not qt_would_use_xcb(env, platform):
        return None
    missing = missing_libraries(load)
    if not missing:
        return None
    return (f"artflow: the desktop app needs system libraries that Qt's X11 (xcb) plugin loads, and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing. Install them with:\n"
            f"    {install_command(missing, os_release)}\n"
            "(or set QT_QPA_PLATFORM to choose another Qt platform, e.g. wayland, and skip this check)")
