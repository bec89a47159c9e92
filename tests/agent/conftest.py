from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.harness import AgentProcess

BASE_CONFIG = """\
# base config kept by the operator
version: 0.1
log:
  level: info
http:
  addr: 127.0.0.1:5000
  headers:
    X-Content-Type-Options: [nosniff]
storage:
  inmemory: {}
"""


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    """Agents started by a test; all stopped at its end, whatever happened."""
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.stop()


@pytest.fixture
def make_agent(tmp_path: Path, agents: list[AgentProcess]):
    counter = iter(range(100))

    def make(
        env: dict[str, str],
        base: str = BASE_CONFIG,
        start: bool = True,
        config: Path | None = None,
    ) -> AgentProcess:
        workdir = tmp_path / f"agent{next(counter)}"
        workdir.mkdir(parents=True)
        if config is None:
            config = workdir / "conf" / "config.yml"
            config.parent.mkdir()
            config.write_text(base)
        agent = AgentProcess(workdir, {"CONFIG": str(config), **env})
        agents.append(agent)
        if start:
            agent.start()
        return agent

    return make
