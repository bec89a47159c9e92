"""Opening backup objects: streamed in pieces, refused by name without a matching identity,
refused as damaged when altered (pyrage and the stock `age` format, no service needed)."""

from __future__ import annotations

import os
import threading

import pyrage
import pytest

from etcdadmin.core.backup.encryption import decrypted, encrypt_stream, opener_for
from etcdadmin.core.backup.errors import BackupDamaged, BackupLocked
from etcdadmin.core.secrets.identities import new_agent_key, parse_identities

MiB = 1024 * 1024


class Collected:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)


def sealed(plain: bytes, recipients: list[object]) -> bytes:
    sink = Collected()
    encrypt_stream((plain[i : i + MiB] for i in range(0, len(plain), MiB)), sink, recipients)
    return bytes(sink.data)


def pieces(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_an_object_opens_in_pieces_with_an_ssh_key_and_stops_cleanly_when_left_early():
    key = new_agent_key("ed25519", comment="ops")
    plain = os.urandom(5 * MiB)
    stored = sealed(plain, [pyrage.ssh.Recipient.from_str(key.public_key)])
    opener = opener_for("c/b", [key.public_key], list(parse_identities(key.private_openssh, "key")))

    out = list(decrypted(pieces(stored), opener, "snapshot.db.age"))

    assert b"".join(out) == plain and len(out) >= 4, "handed over in batches, not whole"
    threads = threading.active_count()
    stream = decrypted(pieces(stored), opener, "snapshot.db.age")
    assert next(stream)
    stream.close()
    assert threading.active_count() == threads, "the decrypting thread ends with the reader"


def test_no_matching_identity_is_refused_naming_every_recipient_and_what_to_pass():
    mine = pyrage.x25519.Identity.generate()
    ssh = new_agent_key("ed25519", comment="alice@ops")
    recipients = [str(mine.to_public()), ssh.public_key]
    stored = sealed(b"keys", [mine.to_public(), pyrage.ssh.Recipient.from_str(ssh.public_key)])
    opener = opener_for("c/b", recipients, [pyrage.x25519.Identity.generate()])

    with pytest.raises(BackupLocked) as refused:
        list(decrypted(pieces(stored), opener, "keys.jsonl.gz.age"))

    message = str(refused.value)
    assert str(mine.to_public()) in message and "ssh-ed25519 ..." in message
    assert "alice@ops" in message and "--identity FILE" in message
    assert "AGE-SECRET-KEY" not in message and "PRIVATE" not in message


def test_an_altered_object_is_reported_damaged():
    identity = pyrage.x25519.Identity.generate()
    stored = bytearray(sealed(os.urandom(MiB), [identity.to_public()]))
    stored[len(stored) // 2] ^= 1
    opener = opener_for("c/b", [str(identity.to_public())], [identity])

    with pytest.raises(BackupDamaged, match="altered or damaged"):
        list(decrypted(pieces(bytes(stored)), opener, "snapshot.db.age"))
