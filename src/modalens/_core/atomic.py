"""Write one file atomically: readers see the old file or the complete new one, never a half-written one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomically(target: str | os.PathLike, write: Callable[[str], None], suffix: str = "") -> Path:
    """Call ``write(tmp_path)`` to create a temporary file beside ``target``, then move it into place.

    The temporary file lives in the target's folder (so the final rename stays on one file system) under a unique
    name (so concurrent writers never share it), keeps ``suffix`` (some writers, like ``np.savez``, add their own
    extension otherwise), gets the permissions any new file gets, and is removed if ``write`` fails. Missing parent
    folders are created.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        write(str(tmp))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
