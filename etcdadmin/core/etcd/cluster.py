"""Calls about the cluster rather than its keys: members, their status, alarms, compaction and
defragmentation. A mixin of `EtcdConnection`, so every caller still has one connection object."""

from __future__ import annotations

from typing import Any

from pyetcd import etcdrpc

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
        settings = ConnectionSettings(
            (endpoint,),
            user=self.settings.user,
            password=self.settings.password,
            ca_file=self.settings.ca_file,
            cert_file=self.settings.cert_file,
            key_file=self.settings.key_file,
            timeout=self.settings.timeout,
        )
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
        return MemberStatus(
            endpoint=endpoint,
            member_id=resp.header.member_id,
            version=resp.version,
            db_size=resp.dbSize,
            leader=resp.leader,
            raft_index=resp.raftIndex,
            raft_term=resp.raftTerm,
            revision=resp.header.revision,
        )

    def alarms(self) -> list[tuple[int, str]]:
        """Active alarms as (member id, alarm name), e.g. NOSPACE."""
        result = self._call("list alarms", lambda c: list(c.list_alarms()))
        return [(a.member_id, _alarm_name(a.alarm_type)) for a in result]

    def defragment(self) -> None:
        self._call("defragment", lambda c: c.defragment())

    def compact(self, revision: int) -> None:
        self._call("compact", lambda c: c.compact(revision, physical=True))
