"""Releases of a directory: what was published when (the history), gray releases to chosen
agents (an overlay they apply on top of the directory), promote, abandon and rollback.

- `history`: the publish record written in the same transaction as every publish, and reading
  a directory's history back;
- `gray`: a gray release, its storage under `/etcdadmin/gray/` and which agents it targets;
- `publish`: creating, promoting and abandoning a gray release;
- `rollback`: a directory restored as of an earlier revision, as a new guarded publish.

Nothing is imported here: `etcdadmin.core.changes` imports `history`, and `publish` imports
`etcdadmin.core.changes`, so importing the package must not import them all.
"""
