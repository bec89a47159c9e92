"""Importing a YAML config file into a directory, exporting a directory as YAML, and copying one
directory into another.

All use the agent's own mapping (`etcdadmin.core.config.mapping`), so what is exported is what
an agent would render and what is imported is what an agent would read back.

Secrets (envelopes in etcd) never leave as armor: an export prints each as `!secret sha256:...`
(its fingerprint: applying the file keeps that envelope) or, when the caller reveals, as
`!secret VALUE`. A copy re-seals each secret for its new key and the target's recipients: an
envelope copied as bytes would be refused there (`MovedSecret`).
"""

from __future__ import annotations

import logging
import re
import secrets as random_tokens
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from etcdadmin.core.changes import CopyDirectory, PendingChange, SetValue
from etcdadmin.core.changes.desired_secrets import Sealer, resolve_secret
from etcdadmin.core.config.dumping import dump_flow
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.config.values import parse_value
from etcdadmin.core.environments.compare import Opener, import_marked_entries, render_directory
from etcdadmin.core.environments.reading import read_values
from etcdadmin.core.etcd import EtcdConnection
from etcdadmin.core.private_file import write_private
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope
from etcdadmin.core.secrets.errors import SecretError
from etcdadmin.core.tree.directories import directory_prefix

log = logging.getLogger(__name__)


class Resealer(Opener, Protocol):
    """Opens and re-seals secrets for another key (`etcdadmin.core.secrets.sealer.SecretSealer`)."""

    def reseal(self, source_key: bytes, envelope: bytes, target_key: bytes) -> bytes: ...


def import_file(
    conn: EtcdConnection, path: Path, directory: bytes, sealer: Sealer | None = None
) -> list[SetValue]:
    """The changes importing `path` into `directory` stages: only keys whose value differs.

    With `sealer`, values the file marks `!secret` are staged sealed (envelopes only), and one
    whose envelope in etcd opens to the file's value, or that the file names by its placeholder,
    is not staged; without, `!secret` is refused.
    """
    entries, marked = import_marked_entries(
        path.read_text(encoding="utf-8"), directory_prefix(directory), secrets=sealer is not None
    )
    current = {kv.key: kv for kv in conn.read_prefix(directory_prefix(directory)).items}
    changes = []
    for key, value in sorted(entries.items()):
        kv = current.get(key)
        if key in marked:
            assert sealer is not None
            sealed = resolve_secret(sealer, key, kv, value)
            if sealed is not None:
                changes.append(
                    SetValue(key, sealed, kv.mod_revision if kv else 0, kv.lease if kv else 0)
                )
        elif kv is None or kv.value != value:
            changes.append(
                SetValue(key, value, kv.mod_revision if kv else 0, kv.lease if kv else 0)
            )
    return changes


@dataclass(frozen=True)
class Export:
    """A directory rendered as YAML, and the paths in it that hold secrets (relative, `a/b`).

    `secret_paths` are the paths whose plaintext is in `text` (secret by name or value, and
    revealed envelopes); `sealed_paths` the envelopes written as `!secret sha256:...`.
    """

    text: str
    secret_paths: tuple[str, ...]
    sealed_paths: tuple[str, ...] = ()


def prepare_export(
    conn: EtcdConnection, directory: bytes, *, reveal: Opener | None = None
) -> Export:
    """Read and render `directory` once; say which of its keys are secret (by path or value).

    Envelopes are written `!secret sha256:...`, or with `reveal` `!secret VALUE` (opened by it;
    one it cannot open raises its `SecretError`, naming the key).
    """
    prefix = directory_prefix(directory)
    items = read_values(conn, prefix)
    plain: list[str] = []
    sealed: list[str] = []
    for key, value in items:
        relative = key[len(prefix) :].decode("utf-8", "replace")
        if is_envelope(value):
            (plain if reveal is not None else sealed).append(relative)
        elif is_secret(relative, value):
            plain.append(relative)
    return Export(render_marked(prefix, items, reveal), tuple(plain), tuple(sealed))


def render_marked(
    prefix: bytes, items: Iterable[tuple[bytes, bytes]], reveal: Opener | None = None
) -> str:
    """`render_directory`, with each envelope as `!secret sha256:...` (or its value: `reveal`).

    The mapping renders a unique stand-in text in place of each envelope (the tag is no value an
    etcd key can hold, so the mapping cannot write it), and the stand-ins are then replaced in
    the YAML text.
    """
    stand_in = f"etcdadmin-secret-{random_tokens.token_hex(8)}-"
    tagged: dict[str, str] = {}
    entries: list[tuple[bytes, bytes]] = []
    for key, value in items:
        if is_envelope(value):
            token = f"{stand_in}{len(tagged)}"
            tagged[token] = "!secret " + _tagged_text(key, value, reveal)
            value = token.encode("ascii")
        entries.append((key, value))
    text = render_directory(prefix, entries)
    if not tagged:
        return text
    return re.sub(re.escape(stand_in) + r"\d+", lambda m: tagged[m.group(0)], text)


def _tagged_text(key: bytes, envelope: bytes, reveal: Opener | None) -> str:
    """What follows `!secret`: the fingerprint, or the opened value as one YAML flow scalar."""
    if reveal is None:
        return fingerprint(envelope)
    name = key.decode("utf-8", "replace")
    value = parse_value(reveal.open(key, envelope), name)
    # One flow item, brackets dropped: YAML's own quoting of the value, on one line.
    return dump_flow([value])[1:-1]


def write_export(export: Export, path: Path) -> int:
    """Write the file readable by its owner only (0600): an export may hold secret values."""
    write_private(path, export.text)
    return len(export.text)


def export_file(conn: EtcdConnection, directory: bytes, path: Path) -> int:
    return write_export(prepare_export(conn, directory), path)


def copy_changes(
    conn: EtcdConnection,
    source: bytes,
    target: bytes,
    sealer: Resealer | None,
    *,
    force: bool = False,
) -> list[PendingChange]:
    """The changes that copy every key of `source` into `target` (both directories).

    Without `force` no target name may exist (one that does is a conflict at apply, nothing
    written); with it, keys whose value differs are overwritten and the others are left alone.
    Each secret is re-sealed for its target key and the target's recipients by `sealer`; one it
    cannot open (or no sealer) raises its `SecretError` naming the key, before anything is
    staged. A source without secrets copies as `CopyDirectory` (one guarded transaction that
    also guards the source keys).
    """
    CopyDirectory(source, target)  # validates the pair: no nesting, trailing slashes
    source_prefix, target_prefix = directory_prefix(source), directory_prefix(target)
    read = conn.read_prefix(source_prefix)
    has_secrets = any(is_envelope(kv.value) for kv in read.items)
    if not force and not has_secrets:
        return [CopyDirectory(source_prefix, target_prefix)]
    existing = {kv.key: kv for kv in conn.read_prefix(target_prefix, revision=read.revision).items}
    changes: list[PendingChange] = []
    for kv in read.items:
        target_key = target_prefix + kv.key[len(source_prefix) :]
        now = existing.get(target_key)
        value = kv.value
        if is_envelope(value):
            if sealer is None:
                name = kv.key.decode("utf-8", "replace")
                raise SecretError(
                    f"{name} is a secret and no operator identity is available to re-encrypt "
                    "it for the target; nothing was copied. Unlock the OS keyring and retry",
                    name,
                )
            if (
                force
                and now is not None
                and _same_secret(sealer, kv.key, value, target_key, now.value)
            ):
                continue
            value = sealer.reseal(kv.key, value, target_key)
        elif force and now is not None and now.value == value:
            continue
        expected = now.mod_revision if force and now is not None else 0
        changes.append(SetValue(target_key, value, expected, kv.lease))
    log.info("planned a copy of %d keys, secrets re-encrypted for the target", len(changes))
    return changes


def _same_secret(
    sealer: Opener, source_key: bytes, envelope: bytes, target_key: bytes, target: bytes
) -> bool:
    """Whether the target already holds this secret's value (then a forced copy keeps it)."""
    if not is_envelope(target):
        return False
    try:
        return sealer.open(source_key, envelope) == sealer.open(target_key, target)
    except SecretError:
        return False  # unreadable at the target: the copy replaces it
