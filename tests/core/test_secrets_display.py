"""Secrets in the places that show values: the YAML loader's `!secret`, the value diffs, the
desired-state plan, and export/import of a directory. Plaintext and armor never appear."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdadmin.core.changes import Plan, PlannedStep
from etcdadmin.core.changes.desired import DesiredChange, DesiredPlan
from etcdadmin.core.changes.desired_display import plan_json, render_plan
from etcdadmin.core.changes.diff import diff_text, value_diff
from etcdadmin.core.config.documents import SecretMark, load_yaml
from etcdadmin.core.config.mapping import flatten_text
from etcdadmin.core.environments.transfer import import_file, prepare_export
from etcdadmin.core.errors import MappingError
from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.etcd.keyvalue import KeyValue
from etcdadmin.core.secrets.envelope import fingerprint, seal
from etcdadmin.core.secrets.identities import new_agent_key
from etcdadmin.core.secrets.recipients import Recipient, add_recipient, parse_public_key
from etcdadmin.core.secrets.sealer import SecretSealer

KEY = b"team/storage/swift/password"
RECIPIENT = parse_public_key(new_agent_key("ed25519").public_key)


def _kv(key: bytes, value: bytes, revision: int = 5) -> KeyValue:
    return KeyValue(key, value, 2, revision, 1, 0)


def test_the_secret_tag_is_read_only_where_asked_and_types_like_the_untagged_value():
    assert load_yaml("a: !secret 5000", secrets=True) == {"a": SecretMark(5000)}
    assert load_yaml("a: !secret '5000'", secrets=True) == {"a": SecretMark("5000")}
    keys = flatten_text("db:\n  password: !secret 'p@ss: w'\n  port: 5432\n", "t", secrets=True)
    assert {k: (type(v).__name__, str(v)) for k, v in keys.items()} == {
        "t/db/password": ("SecretText", "p@ss: w"),
        "t/db/port": ("str", "5432"),
    }
    with pytest.raises(MappingError, match="only `etcdadmin apply -f`") as refused:
        load_yaml("password: !secret hunter2-MARKER")
    assert "MARKER" not in str(refused.value) and "line 1" in str(refused.value)
    with pytest.raises(MappingError, match="holds another `!secret`"):
        load_yaml("a: !secret [!secret x]", secrets=True)
    assert "hunter2" not in repr(load_yaml("a: !secret hunter2", secrets=True))


def test_a_value_diff_shows_envelopes_by_fingerprint_never_plaintext_or_armor():
    old, new = seal(KEY, b"old-MARKER", [RECIPIENT]), seal(KEY, b"new-MARKER", [RECIPIENT])
    text = value_diff(old, new, "a", "b")
    assert f"# secret changed ({fingerprint(old)} -> {fingerprint(new)})" in text
    assert "BEGIN AGE" not in text and "MARKER" not in text
    added = value_diff(None, new, "a", "b")
    assert f"# secret ({fingerprint(new)}) added" in added
    by_name = value_diff(b"old-MARKER", b"new-MARKER", "a", "b", key=KEY)
    assert "MARKER" not in by_name and "(secret) -> (secret)" in by_name


def test_the_pending_changes_diff_masks_secret_named_keys_and_envelopes():
    envelope = seal(b"team/api/token", b"tok-MARKER", [RECIPIENT])
    plan = Plan(
        revision=9,
        steps=(
            PlannedStep(KEY, _kv(KEY, b"old-MARKER"), b"new-MARKER"),
            PlannedStep(b"team/api/token", None, envelope),
            PlannedStep(b"team/http/addr", _kv(b"team/http/addr", b":5000"), b":6000"),
        ),
        basis=(),
    )
    text = diff_text(plan)
    assert "MARKER" not in text and "BEGIN AGE" not in text
    assert f"secret ({fingerprint(envelope)}) added" in text
    assert "-:5000" in text and "+:6000" in text, "other values are still shown"


def test_the_plan_shows_envelopes_and_marked_secrets_without_values():
    before = seal(b"team/a/password", b"old-MARKER", [RECIPIENT])
    after = seal(b"team/a/password", b"new-MARKER", [RECIPIENT])
    plan = DesiredPlan(
        directory=b"team/",
        revision=7,
        added=(DesiredChange(b"team/b/token", None, after, secret=True),),
        changed=(
            DesiredChange(b"team/a/password", _kv(b"team/a/password", before), after, True),
            DesiredChange(b"team/c/plain", _kv(b"team/c/plain", before), b"now-plain"),
        ),
        removed=(),
        unchanged=1,
        kept=0,
        prune=False,
        unchanged_secrets=(b"team/d/secret",),
    )
    text = render_plan(plan)
    assert "+ b/token: secret (added)" in text
    assert "~ a/password: secret (changed)" in text
    # a secret turned plain: the new value stays masked too (it was a secret a moment ago)
    assert f"~ c/plain: secret ({fingerprint(before)}) -> (secret)" in text
    assert "  d/secret: secret (unchanged)" in text
    as_json = str(plan_json(plan))
    for shown in (text, as_json):
        assert "MARKER" not in shown and "BEGIN AGE" not in shown


@pytest.fixture
def conn(etcd_server) -> Iterator[EtcdConnection]:
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as connection:
        yield connection


def test_export_prints_placeholders_and_an_import_of_it_stages_nothing(
    conn, os_keyring, tmp_path: Path
):
    team = f"exp-{uuid.uuid4().hex[:8]}"
    add_recipient(conn, team, Recipient("agent", new_agent_key("ed25519").public_key))
    sealer = SecretSealer(conn)
    key = f"{team}/db/password".encode()
    conn.put(key, sealer.seal(key, b"'5000'"))
    conn.put(f"{team}/db/host".encode(), b"db.example")

    export = prepare_export(conn, team.encode())
    assert f"password: !secret {fingerprint(conn.get(key).value)}" in export.text
    assert export.sealed_paths == ("db/password",) and export.secret_paths == ()
    path = tmp_path / "config.yml"
    path.write_text(export.text)
    assert import_file(conn, path, team.encode(), sealer) == []
    with pytest.raises(MappingError, match="only `etcdadmin apply -f`"):
        import_file(conn, path, team.encode())

    revealed = prepare_export(conn, team.encode(), reveal=sealer)
    assert "password: !secret '5000'" in revealed.text
    assert revealed.secret_paths == ("db/password",)
    path.write_text(revealed.text)
    assert import_file(conn, path, team.encode(), sealer) == [], "'5000' and \"5000\" are one"
    path.write_text(revealed.text.replace("'5000'", "'6000'"))
    (staged,) = import_file(conn, path, team.encode(), sealer)
    assert staged.key == key and b"6000" not in staged.value
    assert sealer.open(key, staged.value) == b'"6000"'
