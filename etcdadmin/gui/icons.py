"""Icons for the window and the tree, from the packaged assets."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from etcdadmin.core.assets import asset_path


def icon(name: str) -> QIcon:
    """The SVG icon `name` (resources/icons/NAME.svg in the source tree)."""
    with asset_path(f"icons/{name}.svg") as path:
        return QIcon(str(path))
