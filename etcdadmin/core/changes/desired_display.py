"""A desired-state plan for the operator: terraform-like text, and a JSON document for scripts.

Values are shown only where `etcdadmin.core.config.sensitive` says they are not secrets; a
secret value is ``(secret)`` everywhere, in the text and in the JSON. An envelope (a value
encrypted in etcd) is ``secret (sha256:...)``, its fingerprint, never its armor; a value the
file marks ``!secret`` is ``secret (added)``, ``secret (changed)`` or ``secret (unchanged)``.
Keys are shown below the directory, with binary bytes escaped (`display_segment`); values as
text, or as 0x-hex when they are not plain text (`preview`), one line each and shortened in
the text form.
"""

from __future__ import annotations

from typing import Any

from etcdadmin.core.changes.desired import DesiredChange, DesiredPlan
from etcdadmin.core.config.sensitive import is_secret
from etcdadmin.core.secrets.envelope import is_envelope, masked
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import preview

# Longer values are cut in the text form (the JSON form carries them whole).
VALUE_WIDTH = 80

SECRET = "(secret)"

_SIGNS = {"add": "+", "change": "~", "remove": "-"}


def _one_line(text: str) -> str:
    """A multi-line text value on one line: line breaks and tabs escaped as in YAML."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def _shown(value: bytes | None, limit: int | None) -> str:
    if value is not None and is_envelope(value):
        return masked(value)
    return _one_line(preview(value, limit))


def _masked(plan: DesiredPlan, change: DesiredChange) -> bool:
    before = change.before.value if change.before is not None else None
    return is_secret(display_segment(plan.relative(change.key)), before, change.after)


def _side_text(plan: DesiredPlan, change: DesiredChange, value: bytes | None) -> str:
    """One side of a change: an envelope by its fingerprint, a secret-named value masked."""
    if value is not None and is_envelope(value):
        return masked(value)
    return SECRET if _masked(plan, change) else _shown(value, VALUE_WIDTH)


def render_line(plan: DesiredPlan, change: DesiredChange) -> str:
    """One change as terraform shows it: ``+ key = value``, ``~ key: old -> new``, ``- key``."""
    name = display_segment(plan.relative(change.key))
    action = change.action
    sign = _SIGNS[action]
    if action == "remove":
        return f"{sign} {name}"
    if change.secret:
        return f"{sign} {name}: secret ({'added' if action == 'add' else 'changed'})"
    if action == "add":
        return f"{sign} {name} = {_side_text(plan, change, change.after)}"
    before = change.before.value if change.before is not None else None
    if _masked(plan, change) and not is_envelope(before) and not is_envelope(change.after):
        return f"{sign} {name}: (secret value changed)"
    before_text = _side_text(plan, change, before)
    return f"{sign} {name}: {before_text} -> {_side_text(plan, change, change.after)}"


def summary(plan: DesiredPlan) -> str:
    """``3 to add, 1 to change, 0 to remove, 120 unchanged`` (and what stays unpruned)."""
    line = (
        f"{len(plan.added)} to add, {len(plan.changed)} to change, {len(plan.removed)} to "
        f"remove, {plan.unchanged} unchanged"
    )
    if plan.kept:
        some = (
            "1 key not in the file is"
            if plan.kept == 1
            else f"{plan.kept} keys not in the file are"
        )
        line += f"; {some} kept (prune removes them)"
    return line


def render_plan(plan: DesiredPlan) -> str:
    """The plan as text: a header, one line per change in key order, and the summary line."""
    header = f"directory {display_segment(plan.directory)} at revision {plan.revision}"
    kept = [
        f"  {display_segment(plan.relative(key))}: secret (unchanged)"
        for key in plan.unchanged_secrets
    ]
    changes = [render_line(plan, change) for change in plan.changes]
    lines = [header, *sorted(changes + kept, key=lambda line: line[2:]), summary(plan)]
    return "\n".join(lines) + "\n"


def _side(plan: DesiredPlan, change: DesiredChange, value: bytes | None) -> str | None:
    if value is None:
        return None
    if is_envelope(value):
        return masked(value)
    return SECRET if _masked(plan, change) else preview(value)


def plan_json(plan: DesiredPlan) -> dict[str, Any]:
    """The plan as a JSON-ready document (for ``--json``), secrets masked as in the text.

    ``before``/``after`` are the value as text (0x-hex when not plain text), ``(secret)``, or
    null when the key is absent on that side; ``mod_revision`` is the key's revision as the
    plan read it (null for a key to add): the revision the apply guards on.
    """
    changes = []
    for change in plan.changes:
        before = change.before
        changes.append(
            {
                "action": change.action,
                "key": display_segment(change.key),
                "path": display_segment(plan.relative(change.key)),
                "secret": change.secret or _masked(plan, change),
                "mod_revision": before.mod_revision if before is not None else None,
                "before": _side(plan, change, before.value if before is not None else None),
                "after": _side(plan, change, change.after),
            }
        )
    return {
        "directory": display_segment(plan.directory),
        "revision": plan.revision,
        "prune": plan.prune,
        "counts": {
            "add": len(plan.added),
            "change": len(plan.changed),
            "remove": len(plan.removed),
            "unchanged": plan.unchanged,
            "kept": plan.kept,
        },
        "changes": changes,
        "unchanged_secrets": [display_segment(plan.relative(k)) for k in plan.unchanged_secrets],
    }
