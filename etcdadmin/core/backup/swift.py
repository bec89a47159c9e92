"""Backups in OpenStack Swift: data objects as Static Large Objects, segments uploaded in
parallel, each worker thread with its own `swiftclient.Connection` (a connection is not safe to
share between threads).

Credentials come from the variables the `swift` command reads: tempauth / v1 from `ST_AUTH`,
`ST_USER`, `ST_KEY`; Keystone v3 from `OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
`OS_PROJECT_NAME`, `OS_USER_DOMAIN_NAME`, `OS_PROJECT_DOMAIN_NAME` through a keystoneauth1
session. Only tempauth is tested here (the test stack has no Keystone); the Keystone path is
the standard keystoneauth1 one that swiftclient documents.

Segments go to `<container>_segments`, the container the `swift upload --use-slo` command
uses, so the main container lists only whole objects.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from etcdadmin.core.backup.errors import (
    BackupDamaged,
    BackupError,
    BackupNotFound,
    LocationAuthFailed,
    LocationUnreachable,
)
from etcdadmin.core.backup.location import ListedObject
from etcdadmin.core.backup.manifest import Segment

if TYPE_CHECKING:
    import swiftclient
    from swiftclient.exceptions import ClientException

log = logging.getLogger(__name__)

DEFAULT_CONTAINER = "etcdadmin-backups"
READ_CHUNK = 1024 * 1024
# What a segment's PUT hands the socket at a time. urllib3 sends a request body 16 KiB at a
# time, one Python round (and one GIL hand-off between the upload threads) per block: a 1M-key
# snapshot (197 MB) was 12,000 of them and took 1.43-1.63 s of the command's CPU; in 256 KiB
# blocks handed over as views of the segment, without a copy, 1.32-1.37 s (2 cores, urllib3 2;
# 1 MiB blocks measured the same). 256 KiB lets a slow link still move a block within the 60 s
# socket timeout that covers each send (4.4 KiB/s per upload thread, where 1 MiB needs 17).
UPLOAD_BLOCK = 256 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class SwiftCredentials:
    """How to authenticate to Swift; `repr` never shows the key."""

    auth_url: str
    user: str
    key: str
    keystone: bool = False
    project_name: str = ""
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str = ""

    def __repr__(self) -> str:
        return f"SwiftCredentials({self.auth_url!r}, {self.user!r})"

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> SwiftCredentials | None:
        """From ST_* (tempauth, v1) or OS_* (Keystone v3); None when neither is set."""
        env = os.environ if env is None else env
        if env.get("ST_AUTH"):
            return cls(env["ST_AUTH"], env.get("ST_USER", ""), env.get("ST_KEY", ""))
        if env.get("OS_AUTH_URL"):
            return cls(
                env["OS_AUTH_URL"],
                env.get("OS_USERNAME", ""),
                env.get("OS_PASSWORD", ""),
                keystone=True,
                project_name=env.get("OS_PROJECT_NAME", ""),
                user_domain_name=env.get("OS_USER_DOMAIN_NAME", "Default"),
                project_domain_name=env.get("OS_PROJECT_DOMAIN_NAME", "Default"),
                region_name=env.get("OS_REGION_NAME", ""),
            )
        return None

    def connect(self) -> swiftclient.Connection:
        # Few, short retries: a wrong URL or a stopped Swift should fail in seconds, not after
        # swiftclient's default five retries with backoff up to 64 s.
        common: dict[str, Any] = {"retries": 2, "starting_backoff": 0.5, "timeout": 60}
        connection = _large_block_connection()
        if not self.keystone:
            return connection(authurl=self.auth_url, user=self.user, key=self.key, **common)
        # Not exercised by the tests: no Keystone runs on the test machine.
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=self.auth_url,
            username=self.user,
            password=self.key,
            project_name=self.project_name,
            user_domain_name=self.user_domain_name,
            project_domain_name=self.project_domain_name,
        )
        options = {"region_name": self.region_name} if self.region_name else None
        return connection(session=session.Session(auth=auth), os_options=options, **common)


@functools.cache
def _large_block_connection() -> type[swiftclient.Connection]:
    """`swiftclient.Connection` whose requests hand the socket `UPLOAD_BLOCK` bytes at a time.

    Made on first use, not with the module: swiftclient and requests take 0.15-0.3 s to
    import, which a command that opens no Swift connection (a backup in a local directory:
    `open_location` imports this module) need not spend. The block size is urllib3's
    `blocksize`, set the way requests documents for a transport adapter
    (`HTTPAdapter.init_poolmanager` in a subclass), on the requests session of each HTTP
    connection swiftclient makes.
    """
    import swiftclient
    from requests.adapters import HTTPAdapter

    class LargeBlocks(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["blocksize"] = UPLOAD_BLOCK
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            # through HTTP(S)_PROXY too (urllib3's proxy managers pass it to each connection)
            proxy_kwargs["blocksize"] = UPLOAD_BLOCK
            return super().proxy_manager_for(proxy, **proxy_kwargs)

    class LargeBlockConnection(swiftclient.Connection):  # type: ignore[misc]
        def http_connection(self, url: str | None = None) -> Any:
            parsed, conn = super().http_connection(url)
            adapter = LargeBlocks()
            conn.request_session.mount("http://", adapter)
            conn.request_session.mount("https://", adapter)
            return parsed, conn

    return LargeBlockConnection


class _ViewReader:
    """A read-only binary file over a memoryview, for a request body.

    io.BytesIO would copy a memoryview (it shares only a `bytes` object's memory); this hands
    out views of the segment (`UPLOAD_BLOCK` at a time), copying nothing: the socket sends
    each before the next is asked for, and `release` ends the reader's hold on the buffer.
    """

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def read(self, size: int = -1) -> memoryview:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = self._view[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def tell(self) -> int:
        return self._pos

    def release(self) -> None:
        """Let go of the buffer: the caller reuses it, whoever still holds this reader."""
        self._view = memoryview(b"")
        self._pos = 0

    def seek(self, pos: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._view))[whence]
        self._pos = max(0, min(len(self._view), base + pos))
        return self._pos


class _SloUpload:
    def __init__(self, location: SwiftLocation, name: str) -> None:
        self.location = location
        self.name = name

    def put_segment(self, index: int, offset: int, data: memoryview) -> Segment:
        segment = f"{self.name}/{index:08d}"
        # A reader, not bytes: bytes(data) would be a second copy of the segment per upload,
        # and swiftclient keeps its last response, and through it the request body, until the
        # connection's next request: one more segment per worker (measured with bytes bodies,
        # 16 MiB x 3 workers: 233-255 MiB peak RSS, 189-195 MiB with the response dropped, and
        # 130-143 MiB with this reader). Its seek/tell let swiftclient rewind for a retry.
        reader = _ViewReader(data)
        try:
            etag = self.location._call(
                "upload a segment",
                lambda c: c.put_object(
                    self.location.segments_container,
                    segment,
                    contents=reader,
                    content_length=len(data),
                ),
            )
        finally:
            reader.release()
        return Segment(name=segment, size=len(data), etag=str(etag))

    def commit(self, segments: list[Segment]) -> None:
        loc = self.location
        body = json.dumps(
            [
                {
                    "path": f"/{loc.segments_container}/{s.name}",
                    "etag": s.etag,
                    "size_bytes": s.size,
                }
                for s in segments
            ]
        )
        loc._call(
            "write a large object's manifest",
            lambda c: c.put_object(
                loc.container, self.name, contents=body, query_string="multipart-manifest=put"
            ),
        )

    def abort(self) -> None:
        pass


class SwiftLocation:
    def __init__(self, credentials: SwiftCredentials, container: str = DEFAULT_CONTAINER) -> None:
        self.credentials = credentials
        self.container = container
        self.segments_container = f"{container}_segments"
        self.description = f"Swift container {container} at {credentials.auth_url}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[swiftclient.Connection] = []

    def _connection(self) -> swiftclient.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.credentials.connect()
            with self._lock:
                self._connections.append(conn)
        return conn

    def _call(self, what: str, fn: Callable[[swiftclient.Connection], T]) -> T:
        from requests import RequestException
        from swiftclient.exceptions import ClientException

        try:
            return fn(self._connection())
        except ClientException as exc:
            raise self._translate(exc, what) from None
        except (RequestException, OSError) as exc:
            raise LocationUnreachable(
                f"cannot reach Swift at {self.credentials.auth_url} to {what} "
                f"({type(exc).__name__}): check that Swift runs and ST_AUTH / OS_AUTH_URL"
            ) from None

    def _translate(self, exc: ClientException, what: str) -> BackupError:
        status = exc.http_status
        if status in (401, 403):
            names = "OS_USERNAME / OS_PASSWORD" if self.credentials.keystone else "ST_USER / ST_KEY"
            return LocationAuthFailed(
                f"Swift at {self.credentials.auth_url} refused the credentials of "
                f"{self.credentials.user!r} (HTTP {status}): check {names}"
            )
        if status == 404:
            return BackupNotFound(f"not found in {self.description} ({what})")
        if status is None or status >= 500:
            return LocationUnreachable(
                f"Swift at {self.credentials.auth_url} failed to {what} "
                f"(HTTP {status or 'no answer'}: {exc.msg}); retry later or check Swift's logs"
            )
        return BackupError(f"Swift refused to {what} (HTTP {status}: {exc.msg})")

    def prepare(self) -> None:
        for container in (self.container, self.segments_container):
            try:
                self._call("read the container", partial(_head, container=container))
            except BackupNotFound:
                log.info("creating a missing Swift container")
                self._call("create the container", partial(_create, container=container))

    def open_upload(self, name: str) -> _SloUpload:
        return _SloUpload(self, name)

    def read(self, name: str) -> Iterator[bytes]:
        _, body = self._call(
            f"download {name}",
            lambda c: c.get_object(self.container, name, resp_chunk_size=READ_CHUNK),
        )
        from requests import RequestException
        from swiftclient.exceptions import ClientException

        try:
            yield from body
        except (RequestException, ClientException, OSError) as exc:
            # Swift checks each SLO segment against the ETag its manifest recorded and cuts
            # the download short when one was replaced.
            raise BackupDamaged(
                f"{name} could not be read back whole from Swift ({type(exc).__name__}): a "
                "segment is missing or was altered (or the connection dropped); verify again, "
                "and if it fails again use another backup"
            ) from None

    def read_small(self, name: str) -> bytes | None:
        try:
            _, body = self._call(f"read {name}", lambda c: c.get_object(self.container, name))
        except BackupNotFound:
            return None
        return bytes(body)

    def write_small(self, name: str, data: bytes) -> None:
        self._call(
            f"write {name}",
            lambda c: c.put_object(
                self.container, name, contents=data, content_type="application/json"
            ),
        )

    def children(self, prefix: str, after: str = "") -> list[str]:
        # names after the marker, and those after `after` below: a backup id given as `after`
        # is left out, a time (the catalog's catch-up) keeps the ids of that second
        marker = f"{prefix}{after}" if after else ""
        try:
            _, listing = self._call(
                "list backups",
                lambda c: c.get_container(
                    self.container, prefix=prefix, delimiter="/", marker=marker, full_listing=True
                ),
            )
        except BackupNotFound:
            return []  # no container yet: no backups
        names = []
        for entry in listing:
            full = entry.get("subdir") or entry.get("name", "")
            names.append(full[len(prefix) :].rstrip("/"))
        return [n for n in names if n > after]

    def list_all(self) -> Iterator[ListedObject]:
        for container, segment in ((self.container, False), (self.segments_container, True)):
            try:
                _, listing = self._call("list the container", partial(_list, container=container))
            except BackupNotFound:
                continue
            for entry in listing:
                yield ListedObject(
                    entry["name"], int(entry["bytes"]), _epoch(entry["last_modified"]), segment
                )

    def delete(self, item: ListedObject) -> None:
        container = self.segments_container if item.segment else self.container
        # a large object goes with its segments; a plain object answers 400 to the query
        query = None if item.segment or item.name.endswith(".json") else "multipart-manifest=delete"
        with contextlib.suppress(BackupNotFound):
            self._call(
                f"delete {item.name}",
                lambda c: c.delete_object(container, item.name, query_string=query),
            )

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


def _head(c: swiftclient.Connection, container: str) -> Any:
    return c.head_container(container)


def _create(c: swiftclient.Connection, container: str) -> Any:
    return c.put_container(container)


def _list(c: swiftclient.Connection, container: str) -> Any:
    return c.get_container(container, full_listing=True)


def _epoch(stamp: str) -> float:
    # Swift lists times as UTC without a zone: 2026-12-02T00:45:40.123450
    return datetime.fromisoformat(stamp + "+00:00").timestamp()
