"""Calls about the cluster rather than its keys: members, their status, alarms, compaction and
defragmentation. A mixin of `EtcdConnection`, so every caller still has one connection object."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import grpc
from pyetcd import etcdrpc

from etcdadmin.core.errors import EtcdError
from etcdadmin.core.etcd.records import Member, MemberStatus
from etcdadmin.core.etcd.settings import ConnectionSettings


def _alarm_name(alarm_type: Any) -> str:
    """etcd's name for an alarm (NOSPACE, CORRUPT), whatever form the client returns it in."""
    if isinstance(alarm_type, int):
        try:
            return str(etcdrpc.AlarmType.Name(alarm_type))
        except ValueError:
            return str(alarm_type)
    return str(getattr(alarm_type, "name", alarm_type))


class ClusterCalls:
    """The cluster calls of `EtcdConnection` (which provides `settings` and `_call`)."""

    settings: ConnectionSettings

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _translate(self, exc: BaseException, what: str) -> EtcdError:
        raise NotImplementedError

    def status(self) -> MemberStatus:
        """Status of the member this connection talks to now (the one a snapshot comes from)."""
        resp = self._call(
            "read member status",
            lambda c: c.maintenancestub.Status(
                etcdrpc.StatusRequest(),
                c.timeout,
                credentials=c.call_credentials,
                metadata=c.metadata,
            ),
        )
        return _member_status("", resp)

    def snapshot_stream(self) -> Iterator[bytes]:
        """etcd's Maintenance.Snapshot as it arrives: the bolt database in 32 KiB pieces, then
        the SHA-256 of the database as the last 32 bytes (checked by `core.backup.snapshot`).

        No deadline: the connection's per-call timeout would cut a large database short.
        """
        stream = self._call(
            "take a snapshot",
            lambda c: c.maintenancestub.Snapshot(
                etcdrpc.SnapshotRequest(),
                None,
                credentials=c.call_credentials,
                metadata=c.metadata,
            ),
        )
        try:
            for response in stream:
                yield response.blob
        except grpc.RpcError as exc:
            raise self._translate(exc, "stream a snapshot") from None
        finally:
            stream.cancel()

    def members(self) -> list[Member]:
        resp = self._call(
            "list members",
            lambda c: c.clusterstub.MemberList(
                etcdrpc.MemberListRequest(),
                c.timeout,
                credentials=c.call_credentials,
                metadata=c.metadata,
            ),
        )
        return [Member(m.ID, m.name, tuple(m.peerURLs), tuple(m.clientURLs)) for m in resp.members]

    def member_status(self, endpoint: str) -> MemberStatus:
        """Status of the member at `endpoint` (version, DB size, leader, raft index)."""
        # everything but the endpoints kept: the TLS files, and TLS asked for by https://
        settings = dataclasses.replace(self.settings, endpoints=(endpoint,))
        # the same kind of connection (an EtcdConnection), to that one member only
        make: Any = type(self)
        one = make(settings)
        try:
            resp = one._call(
                "read member status",
                lambda c: c.maintenancestub.Status(
                    etcdrpc.StatusRequest(),
                    c.timeout,
                    credentials=c.call_credentials,
                    metadata=c.metadata,
                ),
            )
        finally:
            one.close()
        return _member_status(endpoint, resp)

    def alarms(self) -> list[tuple[int, str]]:
        """Active alarms as (member id, alarm name), e.g. NOSPACE."""
        result = self._call("list alarms", lambda c: list(c.list_alarms()))
        return [(a.member_id, _alarm_name(a.alarm_type)) for a in result]

    def defragment(self) -> None:
        self._call("defragment", lambda c: c.defragment())

    def compact(self, revision: int) -> None:
        self._call("compact", lambda c: c.compact(revision, physical=True))


def _member_status(endpoint: str, resp: Any) -> MemberStatus:
    """A Maintenance.Status response as the record every caller reads."""
    return MemberStatus(
        endpoint=endpoint,
        member_id=resp.header.member_id,
        version=resp.version,
        db_size=resp.dbSize,
        leader=resp.leader,
        raft_index=resp.raftIndex,
        raft_term=resp.raftTerm,
        revision=resp.header.revision,
        cluster_id=resp.header.cluster_id,
    )
