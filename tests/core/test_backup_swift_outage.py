"""Swift going away in the middle of a backup: a real stop of the proxy of a Swift of the
test's own (the session one is shared with other tests), while segments are uploading."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdadmin.core.backup import BackupOptions, Catalog, create_backup
from etcdadmin.core.backup.errors import LocationUnreachable
from etcdadmin.core.backup.manifest import MANIFEST_NAME
from etcdadmin.core.backup.prune import prune
from etcdadmin.core.backup.retention import RetentionPolicy
from etcdadmin.core.backup.swift import SwiftLocation
from tests.core.backup_support import MiB, connect, credentials, fill, swift_cli
from tests.stack.swift import SwiftAIO


@pytest.fixture
def own_swift(tmp_path: Path) -> Iterator[SwiftAIO]:
    pytest.importorskip("swiftclient")
    swift = SwiftAIO(tmp_path / "swift")
    swift.start()
    try:
        yield swift
    finally:
        swift.stop()


def _names(swift: SwiftAIO, container: str) -> set[str]:
    """What `swift list` shows an operator."""
    return set(swift_cli(swift, "list", container).stdout.split())


def test_swift_stopped_mid_upload_fails_the_backup_and_the_next_prune_leaves_no_orphan_segments(
    own_swift, private_etcd
):
    container = "outage"
    location = SwiftLocation(credentials(own_swift), container)
    stopped = threading.Event()

    def stop_swift_after_the_first_segment(_size: int) -> None:
        # Called by an upload thread once a segment is stored: the proxy goes down while the
        # other segments are on their way or still to come.
        if not stopped.is_set():
            stopped.set()
            own_swift.stop_proxy()

    with connect(private_etcd) as conn:
        fill(conn, "big/", 2500, size=4000)  # a snapshot of about 10 MB: ten 1 MiB segments
        with pytest.raises(LocationUnreachable) as caught:
            create_backup(
                conn,
                location,
                BackupOptions(export=False, segment_size=MiB, workers=2),
                progress=stop_swift_after_the_first_segment,
            )
    location.close()
    assert stopped.is_set()
    message = str(caught.value)
    assert own_swift.auth_url in message and "check that Swift runs" in message
    assert "\n" not in message

    own_swift.start_proxy()
    # nothing looks complete: no manifest, no catalog entry
    assert not [n for n in _names(own_swift, container) if n.endswith(f"/{MANIFEST_NAME}")]
    later = SwiftLocation(credentials(own_swift), container)
    try:
        assert Catalog(later).entries(rebuild=True) == []
        assert _names(own_swift, f"{container}_segments"), "some segments were stored first"

        result = prune(later, RetentionPolicy(keep_last=5), leftover_age=0)
        assert len(result.leftovers) == 1
    finally:
        later.close()
    assert _names(own_swift, f"{container}_segments") == set()
    assert _names(own_swift, container) <= {"catalog.json"}
