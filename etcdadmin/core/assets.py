"""The one way to the program's assets (icons, the sandbox's example config).

They live in the top-level resources/ folder of the source tree, which setuptools installs as
the package `etcdadmin.resources` (setup.py maps it); `importlib.resources` then finds them
the same way in an editable install and in a wheel installed into site-packages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "etcdadmin.resources"


def _root() -> Traversable:
    try:
        return files(PACKAGE)
    except ModuleNotFoundError:
        # A source tree on sys.path that was never installed (or installed before resources/
        # was a package) has no `etcdadmin.resources`: its files are that tree's resources/.
        log.debug("assets read from the source tree: etcdadmin.resources is not installed")
        return Path(__file__).resolve().parents[2] / "resources"


def asset(name: str) -> Traversable:
    """The asset at `name`, a path relative to resources/ ("icons/key.svg")."""
    return _root().joinpath(*name.split("/"))


def read_text(name: str) -> str:
    return asset(name).read_text(encoding="utf-8")


@contextmanager
def asset_path(name: str) -> Iterator[Path]:
    """A file system path to the asset, for APIs that take a file name (Qt's icons).

    Installed from a wheel or in place, this is the installed file itself; only a zipped
    install would get a temporary copy that lasts as long as the `with` block.
    """
    with as_file(asset(name)) as path:
        yield path
