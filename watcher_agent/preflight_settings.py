"""Pre-flight settings: how a new config is tried before the live service sees it.

`PREFLIGHT` is `container` (a throw-away copy of each served container runs the new config and
must pass the health check), `cmd` (only `PREFLIGHT_CMD` runs against the staged file) or `off`.
It defaults to `container` when SERVE_CONTAINER is set and PREFLIGHT_CMD is not, to `cmd` when
PREFLIGHT_CMD is set, and to `off` otherwise. With `container`, a PREFLIGHT_CMD runs first.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from watcher_agent.settings import AgentSettings, SettingsError

MODES = ("container", "cmd", "off")
# The registry's listen address: the service the agent was first written for.
DEFAULT_ADDR_KEY = "http.addr"
_ADDR_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


@dataclass(frozen=True)
class PreflightSettings:
    mode: str = "off"
    # PREFLIGHT_CMD split as a shell would (no shell runs it): `{}` is replaced by the path of
    # the staged file, which is also in the environment as CONFIG_STAGED.
    command: tuple[str, ...] = ()
    # The config key (dotted) that holds the canary's listen address, rewritten to
    # 127.0.0.1:<port>; empty: nothing is rewritten (the service reads its port elsewhere).
    addr_key: str = DEFAULT_ADDR_KEY
    # The canary's port; None: a free port on 127.0.0.1 is chosen for each pre-flight.
    port: int | None = None
    # Where staged configs live while they are checked; must be visible to Docker at the
    # same path, or through a mount of the agent's own container.
    staging_dir: Path = Path("/var/lib/watcher-agent/preflight")

    @property
    def canary(self) -> bool:
        return self.mode == "container"

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @classmethod
    def from_env(cls, env: Mapping[str, str], agent: AgentSettings) -> PreflightSettings:
        raw_cmd = env.get("PREFLIGHT_CMD", "").strip()
        try:
            command = tuple(shlex.split(raw_cmd))
        except ValueError as exc:
            raise SettingsError(f"PREFLIGHT_CMD cannot be split into words: {exc}") from None
        given = env.get("PREFLIGHT", "").strip().lower()
        if given and given not in MODES:
            raise SettingsError(f"PREFLIGHT={given!r} is not a mode: use " + ", ".join(MODES))
        mode = given or ("cmd" if command else "container" if agent.containers else "off")
        if mode == "container" and not agent.containers:
            raise SettingsError(
                "PREFLIGHT=container needs SERVE_CONTAINER (the container to copy); set "
                "SERVE_CONTAINER, or PREFLIGHT=cmd with PREFLIGHT_CMD"
            )
        if mode == "cmd" and not command:
            raise SettingsError("PREFLIGHT=cmd needs PREFLIGHT_CMD, the command that checks")
        addr_key = env.get("PREFLIGHT_ADDR_KEY", DEFAULT_ADDR_KEY).strip()
        if addr_key and not _ADDR_KEY.match(addr_key):
            raise SettingsError(
                f"PREFLIGHT_ADDR_KEY={addr_key!r} is not a dotted config key such as http.addr"
            )
        port_raw = env.get("PREFLIGHT_PORT", "").strip()
        port = None
        if port_raw:
            if not port_raw.isdigit() or not 1 <= int(port_raw) <= 65535:
                raise SettingsError(
                    f"PREFLIGHT_PORT={port_raw[:20]!r} is not a port: use 1 to 65535, or leave "
                    "it unset to let the agent pick a free one"
                )
            port = int(port_raw)
        staging = env.get("PREFLIGHT_DIR", "").strip()
        return cls(
            mode=mode,
            command=command if mode != "off" else (),
            addr_key=addr_key,
            port=port,
            staging_dir=Path(staging) if staging else agent.state_dir / "preflight",
        )
