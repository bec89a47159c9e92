"""The agent's opening of secret values in-process: what the render receives, the cache, and
which failure the status names (no service needed)."""

from __future__ import annotations

import pytest

from etcdadmin.core.secrets.envelope import seal
from etcdadmin.core.secrets.identities import new_agent_key, parse_identities
from etcdadmin.core.secrets.recipients import parse_public_key
from watcher_agent.secret_values import SecretValues


@pytest.fixture(scope="module")
def agent_key() -> tuple[object, object]:
    """(identity, recipient) of a fresh ed25519 agent key."""
    key = new_agent_key("ed25519")
    return parse_identities(key.private_openssh, "agent key")[0], parse_public_key(key.public_key)


def test_a_directory_without_secrets_is_rendered_as_read(agent_key):
    identity, _ = agent_key
    entries = {b"d/log/level": b"debug"}
    unsealed = SecretValues([identity]).unseal(entries)
    assert unsealed.entries is entries and unsealed.secrets == 0 and unsealed.failure is None


def test_secrets_are_replaced_by_their_values_and_opened_once(agent_key):
    identity, recipient = agent_key
    values = SecretValues([identity])
    entries = {
        b"d/password": seal(b"d/password", b"hunter2", [recipient]),
        b"d/log/level": b"debug",
    }
    unsealed = values.unseal(entries)
    assert dict(unsealed.entries) == {b"d/password": b"hunter2", b"d/log/level": b"debug"}
    assert unsealed.secrets == 1 and values.decryptions == 1

    entries[b"d/log/level"] = b"warn"  # an unrelated change
    assert values.unseal(entries).entries[b"d/password"] == b"hunter2"
    assert values.decryptions == 1


def test_the_first_unreadable_secret_by_key_is_named_with_how_many_more_there_are(agent_key):
    identity, recipient = agent_key
    stranger = parse_public_key(new_agent_key("ed25519").public_key)
    entries = {
        b"d/b": seal(b"d/b", b"v1", [stranger]),
        b"d/a": seal(b"d/other", b"v2", [recipient]),
        b"d/c": seal(b"d/c", b"v3", [recipient]),
    }
    unsealed = SecretValues([identity]).unseal(entries)
    assert unsealed.failure is not None
    assert (unsealed.failure.key, unsealed.failure.reason) == ("d/a", "moved")
    assert unsealed.failures == 2
    assert "1 more secrets" in unsealed.failure_text()
    assert all(value not in unsealed.failure_text() for value in ("v1", "v2", "v3"))


def test_an_agent_without_keys_is_told_to_set_private_key(agent_key):
    _, recipient = agent_key
    entries = {b"d/password": seal(b"d/password", b"hunter2", [recipient])}
    unsealed = SecretValues([]).unseal(entries)
    assert unsealed.failure is not None and unsealed.failure.reason == "no_matching_key"
    assert "PRIVATE_KEY" in unsealed.failure_text()
