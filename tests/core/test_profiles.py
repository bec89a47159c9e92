"""Saved connection profiles in profiles.json (no Qt; the keyring half is in tests/gui and cli)."""

from __future__ import annotations

import json
import stat

import pytest

from etcdadmin.core.profiles import ConnectionProfile, ProfileError, ProfileStore


def test_profiles_are_written_whole_private_and_without_temporary_files(tmp_path):
    store = ProfileStore(tmp_path / "cfg" / "profiles.json")
    store.save(ConnectionProfile("a", "127.0.0.1:2379", production=True))
    store.save(ConnectionProfile("b", "127.0.0.1:2380", read_only=True, ca_file="/ca.pem"))
    assert sorted(p.name for p in (tmp_path / "cfg").iterdir()) == ["profiles.json"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.names() == ["a", "b"]
    assert store.load("b", with_password=False).settings().ca_file == "/ca.pem"
    store.delete("a")
    assert ProfileStore(store.path).names() == ["b"]


def test_fields_a_newer_version_adds_are_ignored_and_a_broken_file_is_named(tmp_path):
    path = tmp_path / "profiles.json"
    entry = {"endpoints": "127.0.0.1:2379", "colour": "red"}
    path.write_text(json.dumps({"format": 2, "profiles": {"x": entry}}))
    assert ProfileStore(path).load("x", with_password=False).endpoints == "127.0.0.1:2379"
    path.write_text("{not json")
    with pytest.raises(ProfileError, match="is not a profiles file; fix or remove it"):
        ProfileStore(path).names()
