"""Which files a dataset, and the app, may read.

- An item's file must lie under its dataset's folder (the manifest's folder, or the image
  folder), after resolving ``..`` and symbolic links, unless the user allows files outside
  (``--allow-outside``): a manifest saying ``../../etc/passwd`` is refused before the file is
  read or hashed.
- The app opens only the datasets given on its command line and, when the path box is enabled,
  paths under the folders the user allows (``--allow-dir``). A refused path gets the same answer
  whether it exists or not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` resolves (``..`` and symlinks followed) to ``root`` or below it.

    >>> inside("/data/set/../set/a.png", "/data/set"), inside("/data/set/../other/a.png", "/data/set")
    (True, False)
    """
    try:
        real, base = os.path.realpath(path), os.path.realpath(root)
    except (OSError, ValueError):
        return False
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def path_problem(path: str, root: Path, *, allow_outside: bool) -> str | None:
    """Why an item's ``path`` may not be read (None when it may).

    >>> path_problem("/etc/passwd", Path("/data"), allow_outside=False)
    'outside the dataset folder /data (pass --allow-outside to read files elsewhere)'
    """
    if "\x00" in path:
        return "the path contains a NUL byte"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8"
    if not allow_outside and not inside(path, root):
        return f"outside the dataset folder {root} (pass --allow-outside to read files elsewhere)"
    return None


class PathRefused(PermissionError):
    """A path the app may not open; the message never says whether it exists."""


@dataclass
class PathPolicy:
    """The app's datasets: those named at launch, and (with the path box on) paths under the
    allowed folders.

    >>> policy = PathPolicy(datasets=["/data/a.csv"], allow_dirs=["/data/more"], path_box=True)
    >>> str(policy.check("/data/more/x/../y.csv")), policy.check("/data/a.csv").name
    ('/data/more/y.csv', 'a.csv')
    """

    datasets: list[str] = field(default_factory=list)
    allow_dirs: list[str] = field(default_factory=list)
    path_box: bool = False

    def check(self, path: str | os.PathLike) -> Path:
        """``path`` resolved, or :class:`PathRefused`."""
        text = os.fspath(path)
        if "\x00" in text:
            raise PathRefused(self.refusal())
        resolved = Path(os.path.realpath(os.path.expanduser(text)))
        if any(resolved == Path(os.path.realpath(d)) for d in self.datasets):
            return resolved
        if self.path_box and any(inside(resolved, d) for d in self.allow_dirs):
            return resolved
        raise PathRefused(self.refusal())

    def refusal(self) -> str:
        if not self.path_box:
            return "this app opens only the datasets it was started with"
        where = ", ".join(self.allow_dirs) or "no folder"
        return f"this app opens only the datasets it was started with and paths under {where} (--allow-dir)"
