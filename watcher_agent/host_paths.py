"""Where a path the agent sees lives on the Docker host, so that a canary can mount it.

Run on the host, the agent's paths are the host's. Run in a container, they are paths inside
its mounts: the agent finds its own container (Docker bind-mounts `/etc/hostname`, `/etc/hosts`
and `/etc/resolv.conf` into every container from `<data-root>/containers/<id>/`, and
/proc/self/mountinfo names that source) and maps a path through the bind mount that holds it.
A path in the agent container's own filesystem has no host path: None.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
_DOCKER_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")


def own_container_id(mountinfo: Path = MOUNTINFO) -> str | None:
    """The id of the container this process runs in, None on the host."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # fields[3] is the mount's root inside its source filesystem, fields[4] its mount point.
        if len(fields) > 4 and fields[4] in _DOCKER_FILES:
            match = _CONTAINER_ID.search(fields[3])
            if match:
                return match.group(1)
    return None


class HostPaths:
    """Maps the agent's paths to the host's; `mounts` are the agent container's bind mounts
    (`(destination, source)`), or None when the agent runs on the host."""

    def __init__(self, mounts: list[tuple[str, str]] | None) -> None:
        self.mounts = (
            None if mounts is None else sorted(mounts, key=lambda m: len(m[0]), reverse=True)
        )

    @classmethod
    def discover(cls, client: Any) -> HostPaths:
        """Look the agent's own container up through `client` (a docker SDK client)."""
        container_id = own_container_id()
        if container_id is None:
            return cls(None)
        attrs = client.api.inspect_container(container_id)
        mounts = [
            (m["Destination"], m["Source"])
            for m in attrs.get("Mounts") or []
            if m.get("Type") == "bind" and m.get("Source") and m.get("Destination")
        ]
        log.info("running in container %s: mapping paths through its mounts", container_id[:12])
        return cls(mounts)

    def host_path(self, path: Path) -> Path | None:
        """`path` as the host sees it; None when it is inside the agent container's own files."""
        real = PurePosixPath(os.path.realpath(path))
        if self.mounts is None:
            return Path(real)
        for destination, source in self.mounts:
            if real == PurePosixPath(destination) or PurePosixPath(destination) in real.parents:
                return Path(source) / real.relative_to(destination)
        return None
