"""etcd's Auth API (users, roles, permissions, enabling auth): a mixin of `EtcdConnection`.

pyetcd (etcd-sdk-python 0.0.7) exposes the generated Auth stub but no calls on it, so these
are the stub's RPCs with the connection's token, failover and error translation (`_call`).
Values crossing modules are `RolePermission` records; passwords go to etcd and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import grpc
from pyetcd import etcdrpc
from pyetcd.etcdrpc import auth_pb2

from etcdadmin.core.errors import EtcdError
from etcdadmin.core.etcd.settings import ConnectionSettings

# A user name no one creates (`:` cannot be given to etcdctl's --user).
_PROBE_USER = "etcdadmin:auth-probe"

PermissionKind = Literal["read", "write", "readwrite"]

_KIND_TO_PROTO = {
    "read": auth_pb2.Permission.READ,
    "write": auth_pb2.Permission.WRITE,
    "readwrite": auth_pb2.Permission.READWRITE,
}
_PROTO_TO_KIND: dict[int, PermissionKind] = {
    auth_pb2.Permission.READ: "read",
    auth_pb2.Permission.WRITE: "write",
    auth_pb2.Permission.READWRITE: "readwrite",
}


@dataclass(frozen=True)
class RolePermission:
    """One permission of a role: `kind` on [key, range_end).

    etcd's encodings: `range_end` empty is the one key `key`; `range_end` b"\\0" with `key`
    b"\\0" is every key (etcdctl's `--from-key` on the empty key).
    """

    kind: PermissionKind
    key: bytes
    range_end: bytes = b""

    @property
    def reads(self) -> bool:
        return self.kind in ("read", "readwrite")

    @property
    def writes(self) -> bool:
        return self.kind in ("write", "readwrite")

    def bounds(self) -> tuple[bytes, bytes | None]:
        """[start, end) with None for "no end"."""
        return _bounds(self.key, self.range_end)

    def covers(self, start: bytes, end: bytes) -> bool:
        """Whether every key of [start, end) lies in this permission's range (etcd's encoding
        of `end`: empty for the one key `start`, b"\\0" for no end)."""
        mine_start, mine_end = self.bounds()
        other_start, other_end = _bounds(start, end)
        if other_start < mine_start:
            return False
        if mine_end is None:
            return True
        return other_end is not None and other_end <= mine_end

    def overlaps(self, start: bytes, end: bytes) -> bool:
        """Whether some key of [start, end) lies in this permission's range."""
        mine_start, mine_end = self.bounds()
        other_start, other_end = _bounds(start, end)
        return (mine_end is None or other_start < mine_end) and (
            other_end is None or mine_start < other_end
        )


def _bounds(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    if not range_end:
        return key, key + b"\0"
    if range_end == b"\0":
        return (b"" if key == b"\0" else key), None
    return key, range_end


class AuthCalls:
    """The auth calls of `EtcdConnection` (which provides `settings` and `_call`)."""

    settings: ConnectionSettings

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def _auth(self, what: str, method: str, request: Any) -> Any:
        return self._call(
            what,
            lambda c: getattr(c.authstub, method)(
                request, c.timeout, credentials=c.call_credentials, metadata=c.metadata
            ),
        )

    # -- auth on/off ------------------------------------------------------------------------

    def auth_is_enabled(self) -> bool:
        """Whether auth is on, asked without credentials: etcd answers a login attempt with
        "authentication is not enabled" when it is off, and "invalid user ID or password" for
        a user that does not exist when it is on. (etcd 3.4 has no AuthStatus call, and a
        plain read cannot tell: a client certificate logs in by itself.)"""

        def probe(c: Any) -> bool:
            request = etcdrpc.AuthenticateRequest(name=_PROBE_USER, password=_PROBE_USER)
            try:
                c.authstub.Authenticate(request, c.timeout)
            except grpc.RpcError as exc:
                details = exc.details() or ""
                if "authentication is not enabled" in details:
                    return False
                if "authentication failed" in details:
                    return True
                raise
            return True

        return bool(self._call("ask whether authentication is enabled", probe))

    def auth_enable(self) -> None:
        """Turn auth on (etcd needs a `root` user holding the `root` role first)."""
        self._auth("enable authentication", "AuthEnable", etcdrpc.AuthEnableRequest())

    def auth_disable(self) -> None:
        """Turn auth off (only root may)."""
        self._auth("disable authentication", "AuthDisable", etcdrpc.AuthDisableRequest())

    # -- users ------------------------------------------------------------------------------

    def user_list(self) -> list[str]:
        resp = self._auth("list users", "UserList", etcdrpc.AuthUserListRequest())
        return sorted(resp.users)

    def user_roles(self, name: str) -> list[str]:
        """The roles of user `name` (a user may read its own without the root role)."""
        resp = self._auth(f"read user {name}", "UserGet", etcdrpc.AuthUserGetRequest(name=name))
        return sorted(resp.roles)

    def user_add(self, name: str, password: str) -> None:
        self._auth(
            f"add user {name}",
            "UserAdd",
            etcdrpc.AuthUserAddRequest(name=name, password=password),
        )

    def user_delete(self, name: str) -> None:
        self._auth(f"remove user {name}", "UserDelete", etcdrpc.AuthUserDeleteRequest(name=name))

    def user_change_password(self, name: str, password: str) -> None:
        self._auth(
            f"change the password of user {name}",
            "UserChangePassword",
            etcdrpc.AuthUserChangePasswordRequest(name=name, password=password),
        )

    def user_grant_role(self, user: str, role: str) -> None:
        self._auth(
            f"give role {role} to user {user}",
            "UserGrantRole",
            etcdrpc.AuthUserGrantRoleRequest(user=user, role=role),
        )

    def user_revoke_role(self, user: str, role: str) -> None:
        self._auth(
            f"take role {role} from user {user}",
            "UserRevokeRole",
            etcdrpc.AuthUserRevokeRoleRequest(name=user, role=role),
        )

    # -- roles ------------------------------------------------------------------------------

    def role_list(self) -> list[str]:
        resp = self._auth("list roles", "RoleList", etcdrpc.AuthRoleListRequest())
        return sorted(resp.roles)

    def role_add(self, name: str) -> None:
        self._auth(f"add role {name}", "RoleAdd", etcdrpc.AuthRoleAddRequest(name=name))

    def role_delete(self, name: str) -> None:
        self._auth(f"remove role {name}", "RoleDelete", etcdrpc.AuthRoleDeleteRequest(role=name))

    def role_permissions(self, name: str) -> list[RolePermission]:
        """The permissions of role `name` (a user may read those of its own roles)."""
        resp = self._auth(f"read role {name}", "RoleGet", etcdrpc.AuthRoleGetRequest(role=name))
        return [
            RolePermission(_PROTO_TO_KIND[int(p.permType)], bytes(p.key), bytes(p.range_end))
            for p in resp.perm
        ]

    def role_grant(self, role: str, permission: RolePermission) -> None:
        perm = auth_pb2.Permission(
            permType=_KIND_TO_PROTO[permission.kind],
            key=permission.key,
            range_end=permission.range_end,
        )
        self._auth(
            f"grant a permission to role {role}",
            "RoleGrantPermission",
            etcdrpc.AuthRoleGrantPermissionRequest(name=role, perm=perm),
        )

    def role_revoke(self, role: str, key: bytes, range_end: bytes) -> None:
        """Remove the permission of `role` on exactly [key, range_end)."""
        try:
            # The generated request types these fields as text (etcd sends bytes; on the wire
            # both are the same length-delimited field), so keys must be UTF-8 here.
            request = etcdrpc.AuthRoleRevokePermissionRequest(
                role=role, key=key.decode("utf-8"), range_end=range_end.decode("utf-8")
            )
        except UnicodeDecodeError:
            raise EtcdError(
                "only permissions on UTF-8 keys can be revoked with etcdadmin; use etcdctl "
                "role revoke-permission for this one"
            ) from None
        self._auth(f"revoke a permission of role {role}", "RoleRevokePermission", request)
