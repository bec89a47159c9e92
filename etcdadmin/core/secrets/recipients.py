"""Who can open the secrets of a directory: public keys kept in etcd, one key per recipient.

Layout: ``/etcdadmin/recipients/<directory prefix><name>``, for example
``/etcdadmin/recipients/registry-test/agent-1``. The value is JSON with the public key, its
fingerprint and the recipient's role (``agent`` or ``operator``). Public keys only: nothing
here is secret, and every tool (client, CLI, agent) encrypts to the same set.

A key's recipients are those of the nearest enclosing directory that has any, so
`registry-production-1.0/` can hold its own set while nested directories share it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import pyrage

from etcdadmin.core.errors import ConflictError, EtcdPermissionDenied
from etcdadmin.core.etcd.client import EtcdConnection
from etcdadmin.core.etcd.records import Compare, TxnOp
from etcdadmin.core.secrets.errors import BadKeyFile, NoRecipients
from etcdadmin.core.tree.directories import directory_prefix

RECIPIENTS_PREFIX: Final = b"/etcdadmin/recipients/"

Role = Literal["agent", "operator"]
_SSH_TYPES: Final = ("ssh-rsa", "ssh-ed25519")


@dataclass(frozen=True)
class Recipient:
    """One public key that the secrets of a directory are encrypted to."""

    name: str
    public_key: str
    role: Role = "agent"

    @property
    def kind(self) -> str:
        """`ssh-rsa`, `ssh-ed25519` or `age` (X25519)."""
        return self.public_key.split(" ", 1)[0] if self.public_key.startswith("ssh-") else "age"

    @property
    def fingerprint(self) -> str:
        return public_key_fingerprint(self.public_key)

    def to_pyrage(self) -> object:
        return parse_public_key(self.public_key)

    def to_json(self) -> bytes:
        record = {
            "name": self.name,
            "public_key": normalize_public_key(self.public_key),
            "fingerprint": self.fingerprint,
            "role": self.role,
        }
        return json.dumps(record, sort_keys=True).encode()


def normalize_public_key(text: str) -> str:
    """The public key as stored: `ssh-TYPE BASE64` (the comment dropped) or `age1...`."""
    fields = text.strip().split()
    if not fields:
        raise BadKeyFile("the public key is empty")
    if fields[0] in _SSH_TYPES and len(fields) >= 2:
        return f"{fields[0]} {fields[1]}"
    if fields[0].startswith("age1") and len(fields) == 1:
        return fields[0]
    raise BadKeyFile(
        f"not a public key etcdadmin can encrypt to ({fields[0][:20]}...): use an `ssh-rsa` or "
        "`ssh-ed25519` public key (the .pub file next to id_rsa/id_ed25519) or an age `age1...` key"
    )


def parse_public_key(text: str) -> object:
    """The pyrage recipient of a public key; `BadKeyFile` when pyrage refuses it."""
    key = normalize_public_key(text)
    try:
        if key.startswith("ssh-"):
            return pyrage.ssh.Recipient.from_str(key)
        return pyrage.x25519.Recipient.from_str(key)
    except pyrage.RecipientError as exc:
        raise BadKeyFile(f"the public key {key[:24]}... is not valid: {exc}") from None


def public_key_fingerprint(public_key: str) -> str:
    """`SHA256:...` as `ssh-keygen -l` prints it for ssh keys; the key itself for age keys.

    An age X25519 recipient is already a short checksummed string; hashing it would only hide it.
    """
    key = normalize_public_key(public_key)
    if key.startswith("age1"):
        return key
    blob = base64.b64decode(key.split(" ", 1)[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def ssh_tag(public_key: str) -> str:
    """The tag age writes in an ssh recipient's stanza: the first 4 bytes of SHA-256(blob)."""
    blob = base64.b64decode(normalize_public_key(public_key).split(" ", 1)[1])
    return base64.b64encode(hashlib.sha256(blob).digest()[:4]).decode().rstrip("=")


def recipient_key(directory: str | bytes, name: str) -> bytes:
    """Where recipient `name` of `directory` is kept."""
    if not name or "/" in name:
        raise BadKeyFile(f"recipient name {name!r}: use a non-empty name without '/'")
    prefix = directory_prefix(directory if isinstance(directory, bytes) else directory.encode())
    return RECIPIENTS_PREFIX + prefix + name.encode()


def _parse(value: bytes) -> Recipient | None:
    try:
        record = json.loads(value)
        role: Role = "operator" if record.get("role") == "operator" else "agent"
        return Recipient(str(record["name"]), str(record["public_key"]), role)
    except (ValueError, KeyError, TypeError):
        return None  # a hand-written record that is not ours: not a recipient


class RecipientBook:
    """The recipients of every directory, read once from etcd (a few keys: cheap to re-read)."""

    def __init__(self, by_directory: dict[bytes, tuple[Recipient, ...]], revision: int = 0) -> None:
        self.by_directory = by_directory
        self.revision = revision

    @classmethod
    def read(cls, conn: EtcdConnection) -> RecipientBook:
        """Every directory's recipients; for a user granted some directories only (etcd
        refuses the whole prefix), those of the recipient ranges the user may read."""
        try:
            snapshot = conn.read_prefix(RECIPIENTS_PREFIX)
            items, revision = list(snapshot.items), snapshot.revision
        except EtcdPermissionDenied:
            from etcdadmin.core.access.visible import readable_ranges

            items, revision = [], 0
            for permission in readable_ranges(conn, RECIPIENTS_PREFIX):
                part = conn.read_prefix(permission.key)
                items.extend(part.items)
                revision = max(revision, part.revision)
        found: dict[bytes, list[Recipient]] = {}
        for kv in items:
            directory, _, _name = kv.key[len(RECIPIENTS_PREFIX) :].rpartition(b"/")
            recipient = _parse(kv.value)
            if recipient is not None and directory:
                found.setdefault(directory + b"/", []).append(recipient)
        return cls({d: tuple(r) for d, r in found.items()}, revision)

    def of_directory(self, directory: str | bytes) -> tuple[Recipient, ...]:
        """The recipients kept for exactly this directory."""
        raw = directory if isinstance(directory, bytes) else directory.encode()
        return self.by_directory.get(directory_prefix(raw), ())

    def governing(self, key: bytes) -> bytes | None:
        """The prefix of the nearest directory holding `key` that has recipients."""
        best: bytes | None = None
        for prefix in self.by_directory:
            if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return best

    def for_key(self, key: bytes) -> tuple[Recipient, ...]:
        """Whom a secret at `key` is encrypted to; `NoRecipients` when nobody."""
        prefix = self.governing(key)
        if prefix is None:
            name = key.decode("utf-8", "replace")
            raise NoRecipients(
                f"{name}: its directory has no recipients, so nobody could read this secret; "
                "add one first (`etcdadmin keys new NAME --dir DIR --out PATH` for an agent, "
                "or `etcdadmin keys add NAME --dir DIR --public-key FILE`)",
                name,
            )
        return self.by_directory[prefix]


def pyrage_recipients(recipients: Iterable[Recipient]) -> list[object]:
    return [r.to_pyrage() for r in recipients]


def add_recipient(conn: EtcdConnection, directory: str | bytes, recipient: Recipient) -> bool:
    """Publish `recipient` for `directory`; False when that name already holds the same key.

    A name that holds a different key is refused rather than replaced: replacing a recipient
    silently would cut its holder off from every secret until a rotation.
    """
    parse_public_key(recipient.public_key)
    key = recipient_key(directory, recipient.name)
    result = conn.txn(
        [Compare(key, "create", "==", 0)],
        [TxnOp("put", key, recipient.to_json())],
        failure_reads=[key],
    )
    if result.succeeded:
        return True
    current = result.current.get(key)
    existing = _parse(current.value) if current else None
    if existing and normalize_public_key(existing.public_key) == normalize_public_key(
        recipient.public_key
    ):
        return False
    raise ConflictError(
        f"a recipient named {recipient.name!r} already exists in {directory!r} with another "
        "key; remove it first (`etcdadmin keys rm`) or choose another name"
    )


def remove_recipient(conn: EtcdConnection, directory: str | bytes, name: str) -> bool:
    return conn.delete(recipient_key(directory, name))


def describe(recipients: Sequence[Recipient]) -> str:
    """`agent-1 (SHA256:...), alice (age1...)`: for plans, tables and messages."""
    return ", ".join(f"{r.name} ({r.fingerprint})" for r in recipients)
