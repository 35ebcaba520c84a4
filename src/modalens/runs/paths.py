"""Paths of run directories: names from data made safe, the target checked, leftovers of killed writers handled.

- :func:`safe_name` is the one gate through which a name that comes from data (a media key, an image name, any
  part of an extra file's path) becomes a path component. It returns the name unchanged or refuses it with a
  :class:`~modalens.runs.RunError` that names it; it never rewrites a name (two names would otherwise meet in one
  file).
- :func:`check_target` says, before any computation, whether a run can be written at a path: the folder it goes
  in can be created and written, and an existing target is a run that ``overwrite`` may replace.
- :func:`recover` handles what a killed writer leaves beside a run: its temporary folder
  (``.<name>.tmp-<host>-<pid>-<random>``) is removed once the writer's process is gone, and a backup of a replaced
  run (``.<name>.old-<host>-<pid>-<random>``) is put back when the run itself is missing, or removed when the new
  run is in place. What it cannot decide (a writer on another host, or one whose process id is in use again) it
  reports as a :class:`RunWarning`, naming the folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
import warnings
from pathlib import Path, PurePosixPath

from modalens._core.errors import ModalensError
from modalens.runs.schema import MANIFEST, RunError

MAX_NAME_BYTES = 120  # a name component; the full file name stays far below the 255 bytes file systems allow
_RESERVED = set('/\\<>:"|?*')  # separators, and what Windows refuses in a file name
_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
REPORT_AFTER_S = 24 * 3600  # a leftover whose writer seems alive this long is reported (its pid may be reused)


class RunWarning(ModalensError, UserWarning):
    """Something beside a run directory needs a person's look: a leftover folder modalens cannot safely remove."""


def safe_name(name: object, what: str = "name") -> str:
    """``name`` if it is safe as one path component, else a :class:`RunError` naming it and why.

    Refused: anything but a non-empty string; ``/``, ``\\`` and the characters Windows refuses (``<>:"|?*``);
    NUL and other control characters; ``..`` anywhere; a leading dot (hidden files, ``.`` and ``..``); a trailing
    dot or space; Windows device names (``CON``, ``NUL``, ``COM1`` ...); more than 120 bytes in UTF-8.
    """
    if not isinstance(name, str):
        raise RunError(f"{what} {name!r} cannot be a file name: it is a {type(name).__name__}, not a string")
    reason = _unsafe(name)
    if reason:
        raise RunError(
            f"{what} {name!r} cannot be a file name: it {reason}; use letters, digits, '-', '_' and '.' (not first)"
        )
    return name


def _unsafe(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    bad = sorted({c for c in name if c in _RESERVED or ord(c) < 32 or ord(c) == 127})
    if bad:
        return f"holds {', '.join(repr(c) for c in bad)}"
    if ".." in name:
        return "holds '..'"
    if name.startswith("."):
        return "starts with '.'"
    if name != name.rstrip(" ."):
        return "ends with a dot or a space"
    if name.split(".")[0].strip().lower() in _DEVICES:
        return "is a device name on Windows"
    return None


def safe_relpath(rel: object, what: str = "file") -> PurePosixPath:
    """A relative path (``media/face/3.png``) whose every component passes :func:`safe_name`."""
    if not isinstance(rel, str) or not rel:
        raise RunError(f"{what} {rel!r} cannot be a path inside a run: give a non-empty relative path")
    parts = rel.split("/")
    for part in parts:
        safe_name(part, f"{what} {rel!r}: component")
    return PurePosixPath(*parts)


def inside(root: Path, rel: PurePosixPath | str) -> Path:
    """``root / rel``, refused with a :class:`RunError` when it resolves outside ``root`` (``..``, symlinks)."""
    base = root.resolve()
    path = (base / rel).resolve()
    if path == base or base not in path.parents:
        raise RunError(f"{rel!s} resolves outside the run folder; refused")
    return path


# -------------------------------------------------------------------------------------------------- the target
def check_target(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check, before computing anything, that a run can be written at ``path``.

    Refused with a :class:`RunError` naming the path: a target that exists without ``overwrite``; one that is a
    file, or a non-empty folder that is not a run (``overwrite`` replaces runs, never other folders); a parent that
    is a file; a folder that cannot be written (tried by creating and removing an empty folder in the nearest
    existing ancestor, which is what the writer will need). A backup left by a writer killed during
    ``overwrite`` is put back first (:func:`recover`).
    """
    target = Path(path)
    for note in recover(target):
        warnings.warn(note, RunWarning, stacklevel=3)
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise RunError(f"{target} exists; pass overwrite=True (CLI: --overwrite) to replace it")
        if not target.is_dir() or target.is_symlink():
            raise RunError(f"{target} exists and is not a run directory; refusing to replace it")
        if not (target / MANIFEST).is_file() and any(target.iterdir()):
            raise RunError(
                f"{target} is a folder with files but not a modalens run (no {MANIFEST}); "
                "overwrite replaces runs only: choose another path or empty it"
            )
    ancestor = target.parent
    while not ancestor.exists():
        if ancestor.is_symlink():
            raise RunError(f"cannot write {target}: {ancestor} is a broken link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunError(f"cannot write {target}: {ancestor} is a file, not a folder")
    try:
        probe = ancestor / f".modalens-probe-{os.getpid()}-{secrets.token_hex(4)}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise RunError(f"cannot write {target}: {ancestor} is not writable ({exc.strerror or exc})") from None
    return target


# ------------------------------------------------------------------------------------ writers' sibling folders
def host_tag() -> str:
    """8 hex digits naming this machine in sibling folder names (a process id means something only on its host)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def sibling(target: Path, kind: str) -> Path:
    """A fresh name beside ``target`` for this process's temporary (``tmp``) or backup (``old``) folder."""
    return target.with_name(f".{target.name}.{kind}-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}")


_SIBLING = re.compile(r"(?P<kind>tmp|old)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]+")
_LEGACY_OLD = re.compile(r"old-(?P<pid>\d+)")  # modalens before these names: `.<name>.old-<pid>`


def _siblings(target: Path) -> list[tuple[Path, str, bool | None]]:
    """Folders beside ``target`` left by its writers: (path, tmp|old, writer alive: True/False/None unknown)."""
    prefix = f".{target.name}."
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir() or entry.is_symlink():
            continue
        rest = entry.name[len(prefix) :]
        m = _SIBLING.fullmatch(rest)
        if m:
            alive = _alive(int(m["pid"])) if m["host"] == host_tag() else None
            out.append((entry, m["kind"], alive))
        elif m := _LEGACY_OLD.fullmatch(rest):
            out.append((entry, "old", _alive(int(m["pid"]))))
        elif re.fullmatch(r"[a-z0-9_]{8}", rest):  # tempfile.mkdtemp's suffix: the writer is unknown
            out.append((entry, "tmp", None))
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process: a write in another thread, never a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: gone for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def recover(target: str | os.PathLike, *, clean: bool = True) -> list[str]:
    """Handle what killed writers left beside the run ``target``; return what needs saying, one line each.

    A backup of a replaced run whose writer is gone is put back when ``target`` is missing (the writer died
    between moving the old run aside and moving the new one in; a line says so), and removed otherwise. With
    ``clean``, temporary folders of writers that are gone are removed (silently). Folders whose writer may still
    run (same host, live process id) are left alone; those older than a day, or older than a minute from a writer
    on another host or of unknown id, get a line naming them. A rename or removal that fails gets a line too; none
    is raised. The callers (:func:`check_target`, :func:`modalens.runs.read_run`) issue the lines as
    :class:`RunWarning`.
    """
    target = Path(target)
    notes: list[str] = []
    report: list[str] = []
    leftovers = _siblings(target)
    backups = sorted((p for p, kind, alive in leftovers if kind == "old" and alive is False), key=_mtime, reverse=True)
    if backups and not (target.exists() or target.is_symlink()) and (backups[0] / MANIFEST).is_file():
        try:
            os.rename(backups[0], target)
            notes.append(f"restored {target} from {backups[0].name}, left by a writer that was stopped mid-replace")
        except OSError as exc:
            report.append(f"{target} is missing and {backups[0]} holds the previous run; rename it back ({exc})")
    now = time.time()
    for path, kind, alive in leftovers:
        if not path.exists():
            continue  # the backup just restored
        if alive is False and (clean or kind == "old"):
            try:
                shutil.rmtree(path)
            except OSError as exc:
                report.append(f"{path} was left by a stopped writer and cannot be removed ({exc}); remove it")
        elif (alive is None and now - _mtime(path) > 60) or (alive and now - _mtime(path) > REPORT_AFTER_S):
            who = "a writer on another machine or of unknown id" if alive is None else "a process still running"
            report.append(f"{path} looks left over by {who}; remove it if no modalens writer is using it")
    return notes + report


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# --------------------------------------------------------------------------------------------- atomic swap
def exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    fn = _renameat2()
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = _errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # kernel or file system without it: the caller falls back to two renames
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


_LIBC: dict[str, object] = {}


def _renameat2():  # noqa: ANN202 - a ctypes function or None
    if "renameat2" not in _LIBC:
        fn = None
        try:
            import ctypes
            import ctypes.util
            import sys

            if sys.platform.startswith("linux"):
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                fn = libc.renameat2
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
        except (OSError, AttributeError):
            fn = None
        _LIBC["renameat2"] = fn
    return _LIBC["renameat2"]


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()
