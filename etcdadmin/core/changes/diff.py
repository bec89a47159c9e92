"""The staged changes as a unified-diff-like text, for the operator's own screen.

Unlike the rest of the core it shows values: UTF-8 text as lines, anything else (binary, or
text an editor would alter) as hex, the same split the value editor makes.
"""

from __future__ import annotations

import difflib

from etcdadmin.core.changes.changeset import Plan
from etcdadmin.core.tree.names import display_segment
from etcdadmin.core.tree.valueformat import is_text


def _display_lines(value: bytes) -> list[str]:
    if is_text(value):
        return value.decode("utf-8").split("\n") if value else []
    return [f"hex {i:04x}: {value[i : i + 16].hex(' ')}" for i in range(0, len(value), 16)]


def diff_text(plan: Plan) -> str:
    """A unified-diff-like text of every step, for the operator's own screen.

    Unlike everything else in this module it shows values (UTF-8, or hex for binary data).
    """
    blocks = []
    for step in plan.steps:
        name = display_segment(step.key)
        before = step.before
        old_label = f"{name} (revision {before.mod_revision})" if before else f"{name} (absent)"
        new_label = f"{name} (staged)" if step.after is not None else f"{name} (staged: deleted)"
        old = before.value if before is not None else b""
        new = step.after if step.after is not None else b""
        hunks = list(
            difflib.unified_diff(_display_lines(old), _display_lines(new), lineterm="", n=3)
        )[2:]
        lines = [f"--- {old_label}", f"+++ {new_label}", *hunks]
        old_lease = before.lease if before is not None else 0
        if step.after is not None and step.lease != old_lease:
            lines.append(f"# lease {old_lease:x} -> {step.lease:x}")
        if not hunks and old != new:
            lines.append("# the values differ only in invisible characters")
        elif not hunks and step.after is not None and before is None:
            lines.append("# empty value")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
