"""The agent's state directory across restarts and crashes (no service needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watcher_agent.config_file import ConfigWriter, sha256
from watcher_agent.state import StateError, StateStore
from watcher_agent.state_layout import StateLock, migrate_shared_layout

BASE = b"version: 0.1\nlog:\n  level: info\n"
RENDERED = b"version: 0.1\nlog:\n  level: debug\n"


def open_store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state", tmp_path / "config.yml")
    store.open()
    return store


def test_a_crash_between_writing_the_config_and_recording_it_keeps_the_pristine_base(tmp_path):
    (tmp_path / "config.yml").write_bytes(BASE)
    store = open_store(tmp_path)
    store.note_writing(RENDERED)
    ConfigWriter(tmp_path / "config.yml").write(RENDERED)
    # ... the agent dies here, before history, last-good and applied are recorded.
    again = open_store(tmp_path)
    assert again.base_text.encode() == BASE
    assert again.state.applied_sha == sha256(BASE), "the new config is not taken as running"


def test_a_config_edited_by_hand_becomes_the_new_base(tmp_path):
    (tmp_path / "config.yml").write_bytes(BASE)
    store = open_store(tmp_path)
    store.state.quarantined["abc"] = 7
    store.save()
    edited = b"version: 0.1\nlog:\n  level: warn\n"
    (tmp_path / "config.yml").write_bytes(edited)
    again = open_store(tmp_path)
    assert again.base_text.encode() == edited
    assert again.state.quarantined == {}


def test_only_the_last_few_rendered_configs_are_kept_and_they_are_private(tmp_path):
    (tmp_path / "config.yml").write_bytes(BASE)
    store = StateStore(tmp_path / "state", tmp_path / "config.yml", history_keep=3)
    store.open()
    for revision in range(10, 16):
        store.add_history(b"log: {level: l%d}\n" % revision, revision)
    names = [p.name for p in store.history()]
    assert [n.split("-")[0] for n in names] == ["000000000013", "000000000014", "000000000015"]
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in store.history())


def test_the_shared_state_of_earlier_versions_moves_to_the_config_it_belongs_to(tmp_path):
    root = tmp_path / ".watcher-agent"
    (tmp_path / "a.yml").write_bytes(BASE)
    (tmp_path / "b.yml").write_bytes(b"version: 0.1\nwho: b\n")
    # Earlier versions kept one config's state directly in `.watcher-agent/`.
    StateStore(root, tmp_path / "a.yml").open()
    store_b = root / "b.yml"
    store_b.mkdir()
    assert not migrate_shared_layout(root, store_b, (tmp_path / "b.yml").read_bytes())
    assert (root / "state.json").exists(), "another config's state is left where it is"

    store_a = root / "a.yml"
    store_a.mkdir()
    assert migrate_shared_layout(root, store_a, BASE)
    assert not (root / "state.json").exists()
    again = StateStore(store_a, tmp_path / "a.yml")
    again.open()
    assert again.base_text.encode() == BASE
    assert (store_a / "history").is_dir()


def test_a_second_lock_on_one_state_directory_is_refused_until_the_first_is_released(tmp_path):
    first = StateLock(tmp_path / "state" / "config.yml")
    first.acquire()
    second = StateLock(tmp_path / "state" / "config.yml")
    with pytest.raises(StateError, match=rf"another agent \(pid {os.getpid()}\) already uses"):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
