"""Changes to etcd: staged commands, plans, guarded apply and undo, diffs, key history.

The public names are re-exported here: `from etcdadmin.core.changes import ChangeSet, SetValue`.
"""

from etcdadmin.core.changes.changeset import (
    MAX_TXN_OPS,
    Applied,
    ChangeConflict,
    ChangeSet,
    Plan,
    PlannedStep,
    TooManyOperations,
    apply_plan,
)
from etcdadmin.core.changes.commands import (
    Conflict,
    CopyDirectory,
    DeleteDirectory,
    DeleteKey,
    InvalidChange,
    PendingChange,
    RenameKey,
    SetValue,
)
from etcdadmin.core.changes.workspace import Batch, NothingToDo, Workspace, read_current

__all__ = [
    "MAX_TXN_OPS",
    "Applied",
    "Batch",
    "ChangeConflict",
    "ChangeSet",
    "Conflict",
    "CopyDirectory",
    "DeleteDirectory",
    "DeleteKey",
    "InvalidChange",
    "NothingToDo",
    "PendingChange",
    "Plan",
    "PlannedStep",
    "RenameKey",
    "SetValue",
    "TooManyOperations",
    "Workspace",
    "apply_plan",
    "read_current",
]
