"""Disaster recovery: turn a verified etcd snapshot file into data directories for a new cluster.

etcd's own tool does the restore: `etcdutl snapshot restore` where etcdutl exists (etcd 3.5
and later), else `ETCDCTL_API=3 etcdctl snapshot restore` (3.4, which has no etcdutl). A
restore is not something to re-implement: the tool rewrites the member's identity, raft log
and cluster membership inside the bbolt database, and it knows its own format.

From etcd 3.5.10 the tool can also `--bump-revision` and `--mark-compacted`: the restored
cluster then starts above any revision a watcher has seen and refuses watches from before it,
so every watcher reads again. Older tools cannot (etcd 3.4.23 is what Debian ships): the
restored cluster starts again at the snapshot's revision, and the steps say what that means.

By default the restored cluster gets a cluster token of its own, so its cluster id differs
from the lost one's: a follower (`etcdadmin.core.etcd.follow`) that reconnects reads
everything again even when writes after the restore have pushed the revision past the one it
held. `restore_snapshot` returns the etcd command lines that start the restored members.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from etcdadmin.core.errors import EtcdAdminError

log = logging.getLogger(__name__)

# etcd's recovery guide suggests a bump larger than the writes the lost cluster may have made
# after the snapshot; a billion revisions is its example, and a revision is an int64.
DEFAULT_BUMP = 1_000_000_000

# Restoring a 1M-key (177 MB) snapshot took 3.6 s here; ten minutes means a broken tool.
TOOL_TIMEOUT = 600.0

_VERSION_RE = re.compile(r"version:\s*(\d+\.\d+\.\d+)")


class DisasterRecoveryError(EtcdAdminError):
    """The snapshot could not be restored: the message says which step failed and why."""


@dataclass(frozen=True)
class RestoreTool:
    """etcd's restore tool found on this machine: its path, version and abilities."""

    name: str
    path: str
    version: str
    can_bump: bool

    def command(self, *args: str) -> list[str]:
        return [self.path, *args]

    @property
    def env(self) -> dict[str, str]:
        # etcdctl 3.4 speaks the v2 API unless told otherwise; etcdutl ignores the variable.
        return {**os.environ, "ETCDCTL_API": "3"}


def find_restore_tool() -> RestoreTool:
    """etcdutl when installed (etcd 3.5+), else etcdctl; with its version and bump support.

    Bump support is read from the tool's own `snapshot restore --help`, not inferred from its
    version: a distribution may backport the flags.
    """
    for name in ("etcdutl", "etcdctl"):
        path = shutil.which(name)
        if path is None:
            continue
        tool = RestoreTool(name, path, "", can_bump=False)
        version = _VERSION_RE.search(_run(tool, ["version"], "read its version").stdout)
        usage = _run(tool, ["snapshot", "restore", "--help"], "read its options")
        text = usage.stdout + usage.stderr
        can_bump = "--bump-revision" in text and "--mark-compacted" in text
        found = RestoreTool(name, path, version.group(1) if version else "unknown", can_bump)
        log.info("snapshot restore tool: %s %s (bump: %s)", name, found.version, can_bump)
        return found
    raise DisasterRecoveryError(
        "neither etcdutl nor etcdctl is installed; install etcd's tools (Debian: apt-get "
        "install etcd-client) on the machine that restores"
    )


@dataclass(frozen=True)
class RestoredMember:
    """One member of the restored cluster: its name, where it listens, and its data dir."""

    name: str
    peer_url: str
    client_url: str
    data_dir: Path


@dataclass(frozen=True)
class SnapshotStatus:
    """What the tool reads from a snapshot file: its revision and its number of keys
    (etcd's own bookkeeping keys included, as the tool counts them)."""

    revision: int
    total_keys: int


@dataclass(frozen=True)
class RecoveredCluster:
    """The data directories made from a snapshot, and how to start etcd on them.

    `bumped_by` is 0 when the tool could not bump revisions (the cluster restarts at
    `snapshot.revision`). `commands` hold one etcd command line per member, in member order.
    """

    tool: RestoreTool
    snapshot: SnapshotStatus
    members: tuple[RestoredMember, ...]
    cluster_token: str
    bumped_by: int
    commands: tuple[tuple[str, ...], ...]
    steps: str


def snapshot_status(snapshot: Path, tool: RestoreTool | None = None) -> SnapshotStatus:
    """The revision and key count of a snapshot file, as etcd's tool reads them."""
    tool = tool or find_restore_tool()
    done = _run(tool, ["snapshot", "status", str(snapshot), "-w", "json"], "read the snapshot")
    try:
        status = json.loads(done.stdout)
        return SnapshotStatus(int(status["revision"]), int(status["totalKey"]))
    except (ValueError, KeyError, TypeError):
        raise DisasterRecoveryError(
            f"{tool.name} {tool.version} printed a snapshot status this version of etcdadmin "
            "does not understand; run it by hand: "
            f"{shlex.join(tool.command('snapshot', 'status', str(snapshot), '-w', 'json'))}"
        ) from None


def restore_snapshot(
    snapshot: Path,
    members: Sequence[RestoredMember],
    *,
    cluster_token: str | None = None,
    bump_revision: int = DEFAULT_BUMP,
    tool: RestoreTool | None = None,
) -> RecoveredCluster:
    """Restore `snapshot` (already downloaded and verified) into one data dir per member.

    One member or several (three, usually); each data dir must not exist yet. Without a
    `cluster_token`, a new one is made, so the restored cluster has a cluster id of its own.
    `bump_revision` (0: none) is passed with `--mark-compacted` only when the tool supports
    both. A failure removes the data dirs this call created and raises `DisasterRecoveryError`.
    """
    tool = tool or find_restore_tool()
    _check_members(members)
    status = snapshot_status(snapshot, tool)
    token = cluster_token or f"etcdadmin-restore-{uuid.uuid4().hex[:12]}"
    initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
    bump = bump_revision if tool.can_bump and bump_revision > 0 else 0
    created: list[Path] = []
    try:
        for member in members:
            args = [
                "snapshot", "restore", str(snapshot),
                "--name", member.name,
                "--data-dir", str(member.data_dir),
                "--initial-cluster", initial_cluster,
                "--initial-advertise-peer-urls", member.peer_url,
                "--initial-cluster-token", token,
            ]  # fmt: skip
            if bump:
                args += ["--bump-revision", str(bump), "--mark-compacted"]
            created.append(member.data_dir)
            _run(tool, args, f"restore member {member.name}")
    except BaseException:
        for path in created:
            shutil.rmtree(path, ignore_errors=True)
        raise
    commands = tuple(_start_command(m, initial_cluster, token) for m in members)
    log.info("restored a snapshot into %d data dirs with %s", len(members), tool.name)
    return RecoveredCluster(
        tool=tool,
        snapshot=status,
        members=tuple(members),
        cluster_token=token,
        bumped_by=bump,
        commands=commands,
        steps=_steps(tool, status, tuple(members), commands, bump, cluster_token is None),
    )


def _check_members(members: Sequence[RestoredMember]) -> None:
    if not members:
        raise DisasterRecoveryError("name at least one member to restore the snapshot into")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise DisasterRecoveryError(f"member names must differ: {', '.join(names)}")
    for member in members:
        if member.data_dir.exists():
            raise DisasterRecoveryError(
                f"the data dir {member.data_dir} of member {member.name} already exists; "
                "restore into a new directory (etcd's tool refuses to overwrite one)"
            )


def _start_command(member: RestoredMember, initial_cluster: str, token: str) -> tuple[str, ...]:
    # The --initial-* flags are ignored once a data dir exists; they are given anyway so that
    # the line says which cluster the member belongs to.
    return (
        "etcd",
        "--name", member.name,
        "--data-dir", str(member.data_dir),
        "--listen-client-urls", member.client_url,
        "--advertise-client-urls", member.client_url,
        "--listen-peer-urls", member.peer_url,
        "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", initial_cluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", token,
    )  # fmt: skip


def _steps(
    tool: RestoreTool,
    status: SnapshotStatus,
    members: tuple[RestoredMember, ...],
    commands: tuple[tuple[str, ...], ...],
    bump: int,
    new_identity: bool,
) -> str:
    lines = [
        f"Restored a snapshot at revision {status.revision} ({status.total_keys} database keys, "
        f"etcd's own included) into "
        f"{len(members)} data director{'y' if len(members) == 1 else 'ies'} with "
        f"{tool.name} {tool.version}.",
    ]
    if len(members) > 1:
        lines.append(
            "Copy each data dir to its member's machine, then start every member (they serve "
            "once a majority of them runs):"
        )
    else:
        lines.append("Start the member:")
    lines += [f"  {shlex.join(command)}" for command in commands]
    endpoints = ",".join(m.client_url for m in members)
    lines.append(f"Check it: ETCDCTL_API=3 etcdctl --endpoints={endpoints} endpoint health")
    if bump:
        lines.append(
            f"Revisions were bumped by {bump} and marked compacted: every watcher that resumes "
            "from a revision it held is refused with 'compacted' and reads everything again."
        )
    else:
        lines.append(
            f"{tool.name} {tool.version} cannot bump revisions on restore (--bump-revision "
            "needs etcd 3.5.10 or later): the restored cluster starts again at revision "
            f"{status.revision}, below what agents and clients have seen."
        )
        if new_identity:
            lines.append(
                "etcdadmin's agents and clients read everything again when they reconnect: the "
                "restored cluster has a cluster id of its own (a new token)."
            )
        else:
            lines.append(
                "The restored cluster keeps the lost one's cluster id (same token and peer "
                "URLs): etcdadmin's agents and clients read everything again because the "
                "revision went backwards, but only if they reconnect before writes carry it "
                "past the revision they held. Keep writers away until every agent has read "
                "again (or restart the agents)."
            )
        lines.append(
            "Other watchers that resume from the revision they held hear nothing until the "
            "restored cluster passes it, and then only what comes after: restart them once "
            "the cluster serves."
        )
    return "\n".join(lines) + "\n"


def _run(tool: RestoreTool, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    argv = tool.command(*args)
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=tool.env,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DisasterRecoveryError(
            f"{tool.name} could not {what}: {exc}; run it by hand to see why: {shlex.join(argv)}"
        ) from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise DisasterRecoveryError(
            f"{tool.name} could not {what} (exit {done.returncode}): "
            f"{said[-1] if said else 'no message'}; run it by hand to see why: "
            f"{shlex.join(argv)}"
        )
    return done
