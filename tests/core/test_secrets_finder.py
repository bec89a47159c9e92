"""Telling which keys hold a secret, for views that mark them without reading them whole."""

from __future__ import annotations

import time
import uuid

import pyrage

from etcdadmin.core.etcd import ConnectionSettings, EtcdConnection
from etcdadmin.core.secrets.envelope import seal
from etcdadmin.core.secrets.finder import PROBE_BATCH, find_secret_keys


def test_only_keys_holding_an_envelope_are_found_across_several_transactions(etcd_server):
    top = f"finder-{uuid.uuid4().hex[:8]}"
    recipient = pyrage.x25519.Identity.generate().to_public()
    keys = [f"{top}/k{i:04d}".encode() for i in range(PROBE_BATCH * 2 + 5)]
    secret = {keys[0], keys[PROBE_BATCH], keys[-1]}
    with EtcdConnection(ConnectionSettings((etcd_server.endpoint,))) as conn:
        for key in keys:
            conn.put(key, seal(key, b"v", [recipient]) if key in secret else b"x" * 100)
        conn.put(f"{top}/looks", b"-----BEGIN AGE ENCRYPTED FILE----- typed by hand")
        absent = f"{top}/absent".encode()
        started = time.perf_counter()
        found = find_secret_keys(conn, [*keys, absent])
        elapsed = time.perf_counter() - started
        revision = conn.header()[0]
        # a value that claims to be a secret is marked as one (opening it says it is
        # damaged): a view never shows armor text as if it were the setting
        assert find_secret_keys(conn, [f"{top}/looks".encode()]) == {f"{top}/looks".encode()}
        assert conn.header()[0] == revision, "probing writes nothing"
    assert found == secret
    print(f"probed {len(keys) + 1} keys in {elapsed * 1000:.0f} ms")
