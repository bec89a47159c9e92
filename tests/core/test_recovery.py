"""Staged changes kept on disk for the next start: what is kept, what never is."""

from __future__ import annotations

import stat

from etcdadmin.core.changes import (
    CopyDirectory,
    DeleteDirectory,
    DeleteKey,
    RenameKey,
    SetValue,
)
from etcdadmin.core.changes.recovery import StagedWork


def test_staged_changes_come_back_as_they_were_staged(tmp_path):
    changes = [
        SetValue(b"app/log/level", b"debug", 7, 0),
        DeleteKey(b"app/old", 3),
        RenameKey(b"app/a", b"app/b", 9),
        CopyDirectory(b"example-test/", b"example-copy/"),
        DeleteDirectory(b"gone/"),
    ]
    StagedWork("prod: eu", tmp_path).save(changes)
    recovered = StagedWork("prod: eu", tmp_path).load()
    assert recovered is not None
    assert list(recovered.changes) == changes
    assert recovered.withheld == ()
    assert StagedWork("another profile", tmp_path).load() is None


def test_a_secret_value_is_never_written_and_is_reported_as_withheld(tmp_path):
    work = StagedWork("test", tmp_path)
    work.save(
        [
            SetValue(b"app/db/password", b"hunter2-very-secret", 5, 0),
            SetValue(b"app/tls/cert", b"-----BEGIN PRIVATE KEY-----\nMIIE\n", 6, 0),
            SetValue(b"app/log/level", b"debug", 7, 0),
        ]
    )
    text = work.path.read_text()
    assert "hunter2" not in text and "aHVudGVyMi" not in text  # nor its base64
    assert "PRIVATE" not in text and "LS0tLS1CRUdJTi" not in text
    assert stat.S_IMODE(work.path.stat().st_mode) == 0o600
    recovered = work.load()
    assert recovered is not None
    assert recovered.changes == (SetValue(b"app/log/level", b"debug", 7, 0),)
    assert recovered.withheld == (b"app/db/password", b"app/tls/cert")


def test_nothing_staged_leaves_no_file(tmp_path):
    work = StagedWork("test", tmp_path)
    work.save([DeleteKey(b"a", 1)])
    assert work.path.exists()
    work.save([])
    assert not work.path.exists()
    assert work.load() is None
