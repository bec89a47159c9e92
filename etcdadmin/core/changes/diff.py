"""Values as a unified diff, for the operator's own screen: the one diff of the pending-changes
panel (`diff_text` of a plan) and of the history panel (`value_diff` of a version and now).

Unlike the rest of the core it shows values: UTF-8 text as lines, anything else (binary, or
text an editor would alter, such as CRLF line ends) as hex lines, the same split the value
editor makes, so a binary value reads the same wherever it is compared.

Never a secret's: an envelope (a value encrypted in etcd) is shown as `secret (sha256:...)`,
its fingerprint, never as plaintext or armor; a plain value at a secret-named key
(`etcdadmin.core.config.sensitive.is_secret`) is `(secret)`.
"""

from __future__ import annotations

import difflib

from etcdadmin.core.changes.changeset import Plan
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope, masked
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import is_text

# What a masked plain value reads as (the same word as the desired-state plan).
SECRET = "(secret)"


def value_lines(value: bytes | None) -> list[str]:
    """The lines a value is compared as: text lines, or `hex 0010: ..` lines of 16 bytes."""
    if not value:
        return []
    if is_text(value):
        return value.decode("utf-8").split("\n")
    return [f"hex {i:04x}: {value[i : i + 16].hex(' ')}" for i in range(0, len(value), 16)]


def value_diff(
    before: bytes | None,
    after: bytes | None,
    old_label: str,
    new_label: str,
    *,
    key: bytes | None = None,
) -> str:
    """A unified diff from `before` to `after` (None: the key is absent or deleted there),
    headed by the two labels; a `#` line says what the diff alone would not show.

    Secrets are one `#` line instead of hunks: an envelope on either side, or any value when
    `key` (the full key; a directory name is no secret word) is secret by name or a value holds
    a private key.
    """
    if is_envelope(before) or is_envelope(after) or _secret_named(key, before, after):
        return "\n".join([f"--- {old_label}", f"+++ {new_label}", _secret_line(before, after)])
    hunks = list(difflib.unified_diff(value_lines(before), value_lines(after), lineterm="", n=3))[
        2:
    ]
    lines = [f"--- {old_label}", f"+++ {new_label}", *hunks]
    if not hunks:
        if before == after:
            lines.append("# same value" if before is not None else "# absent on both sides")
        elif before is None:
            lines.append("# empty value")
        elif after is None:
            lines.append("# an empty value, deleted")
        else:
            lines.append("# the values differ only in invisible characters")
    return "\n".join(lines)


def _secret_named(key: bytes | None, *values: bytes | None) -> bool:
    name = display_segment(key) if key is not None else ""
    return is_secret(name, *values)


def _side(value: bytes | None) -> str:
    if value is None:
        return "absent"
    return masked(value) if is_envelope(value) else SECRET


def _secret_line(before: bytes | None, after: bytes | None) -> str:
    """`# secret changed (sha256:a -> sha256:b)` and its kin: which versions, never a value."""
    if before == after:
        return f"# {_side(before)}, the same" if before is not None else "# absent on both sides"
    if is_envelope(before) and is_envelope(after):
        assert before is not None and after is not None
        return f"# secret changed ({fingerprint(before)} -> {fingerprint(after)})"
    if before is None:
        return f"# {_side(after)} added"
    if after is None:
        return f"# {_side(before)} deleted"
    return f"# {_side(before)} -> {_side(after)}"


def diff_text(plan: Plan) -> str:
    """A unified-diff-like text of every step of a plan, with revisions and lease changes."""
    blocks = []
    for step in plan.steps:
        name = display_segment(step.key)
        before = step.before
        old_label = f"{name} (revision {before.mod_revision})" if before else f"{name} (absent)"
        new_label = f"{name} (staged)" if step.after is not None else f"{name} (staged: deleted)"
        text = value_diff(
            before.value if before else None, step.after, old_label, new_label, key=step.key
        )
        old_lease = before.lease if before is not None else 0
        if step.after is not None and step.lease != old_lease:
            text += f"\n# lease {old_lease:x} -> {step.lease:x}"
        blocks.append(text)
    return "\n\n".join(blocks) + ("\n" if blocks else "")
