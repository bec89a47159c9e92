"""Values as the client's diffs show them when a secret is involved: labels, never values.

The diffs themselves are the core's (`etcdadmin.core.changes.diff`); what they are given here
is a label in place of each side of a secret change: the envelope's fingerprint, which tells
two versions apart and reveals nothing. A plain value about to become a secret ("Make
secret") is hidden too: it is the secret's value.
"""

from __future__ import annotations

import dataclasses

from etcdadmin.core.changes import Plan, PlannedStep
from etcdadmin.core.secrets.envelope import fingerprint, is_envelope

# What stands for the plain side of a value that becomes, or stops being, a secret.
HIDDEN_PLAIN = b"(a plain value, hidden: the other side is a secret)"


def _label(value: bytes | None) -> bytes | None:
    if value is None:
        return None
    if is_envelope(value):
        return f"secret {fingerprint(value)}".encode()
    return HIDDEN_PLAIN


def masked_pair(before: bytes | None, after: bytes | None) -> tuple[bytes | None, bytes | None]:
    """`before` and `after` as a diff may show them: unchanged unless either is a secret."""
    if not (is_envelope(before) or is_envelope(after)):
        return before, after
    return _label(before), _label(after)


def _masked_step(step: PlannedStep) -> PlannedStep:
    before = step.before.value if step.before is not None else None
    shown_before, shown_after = masked_pair(before, step.after)
    if shown_after is step.after and shown_before is before:
        return step
    kv = None
    if step.before is not None and shown_before is not None:
        kv = step.before._replace(value=shown_before)
    return dataclasses.replace(step, before=kv, after=shown_after)


def masked_plan(plan: Plan) -> Plan:
    """A copy of `plan` for display only (`diff_text`): never applied."""
    return dataclasses.replace(plan, steps=tuple(_masked_step(step) for step in plan.steps))
