"""Files of a run directory: written whole or not at all, never through a
planted link, writable by their owner alone.

``write_atomic`` writes a fresh temporary file in the target's directory
(``tempfile.mkstemp``: an unpredictable name, created with ``O_EXCL``, so
a symlink put in its place is never followed), fsyncs it and renames it
over the target: a crash at any instant leaves the old file or the new
one. A failed write removes its temporary file; a full disk raises
``DiskFullError``, one line naming the file and the space left.
"""

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from pes_rl.errors import DiskFullError

# Group and others never get write permission, whatever the umask: anyone
# who can write into a run directory could swap its files.
NOT_GROUP_OR_OTHERS = 0o022
# Ours (``write_atomic``), and the fixed names of earlier versions.
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp|ckpt-\d+\.pkl\.tmp|metrics\.tmp")


def _umask() -> int:
    """The process's umask, read without setting it (setting it, even
    briefly, would change the mode of files other threads create)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What ``open`` would give a new file, less group and others' write."""
    return 0o666 & ~_umask() & ~NOT_GROUP_OR_OTHERS


def make_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents; each directory it creates is
    writable by its owner alone (``mkdir``'s mode is masked by the umask,
    so at no moment with more permission)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.is_dir()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o777 & ~NOT_GROUP_OR_OTHERS, exist_ok=True)
    return path


def _size(num_bytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} bytes"


def disk_full(path: str | os.PathLike) -> DiskFullError:
    """The one-line error of a write to ``path`` that found no space."""
    try:
        free = _size(shutil.disk_usage(Path(path).parent).free) + " free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(
        f"no space left on device to write {path} ({free}); what was written "
        "before is intact: free some space, then resume"
    )


def _is_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any instant leaves
    either the old file or the new one."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as err:
        if _is_full(err):
            raise disk_full(path) from None
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if _is_full(err):
            raise disk_full(path) from None
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_atomic(path, text.encode())


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append ``line`` and a newline; a symlink at ``path`` is refused. A
    crash may cut the line short: readers drop a line they cannot parse."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, file_mode())
        with os.fdopen(fd, "ab") as f:
            f.write((line + "\n").encode())
    except OSError as err:
        if _is_full(err):
            raise disk_full(path) from None
        raise


def remove_temporaries(directory: str | os.PathLike) -> None:
    """Remove what writes cut short by a kill left in ``directory`` (call it
    only while holding the directory: a live writer's file would go too)."""
    directory = Path(directory)
    if directory.is_dir():
        for path in directory.iterdir():
            if _TEMPORARY.fullmatch(path.name) and not path.is_dir():
                path.unlink(missing_ok=True)
