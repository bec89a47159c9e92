"""Two values side by side (the compare dialog) when a secret is involved: labels, never values.

Diffs are the core's (`etcdadmin.core.changes.diff`), which masks secrets itself; a side-by-side
view has no diff, so it gets a label in place of each side of a secret: the envelope as every
view shows it (`envelope.masked`, its fingerprint), and a plain value facing a secret hidden
too (it is, or was, the secret's value).
"""

from __future__ import annotations

from etcdadmin.core.secrets.envelope import is_envelope, masked

# What stands for the plain side of a value that becomes, or stops being, a secret.
HIDDEN_PLAIN = b"(a plain value, hidden: the other side is a secret)"


def _label(value: bytes | None) -> bytes | None:
    if value is None:
        return None
    if is_envelope(value):
        return masked(value).encode()
    return HIDDEN_PLAIN


def masked_pair(before: bytes | None, after: bytes | None) -> tuple[bytes | None, bytes | None]:
    """`before` and `after` as a diff may show them: unchanged unless either is a secret."""
    if not (is_envelope(before) or is_envelope(after)):
        return before, after
    return _label(before), _label(after)
