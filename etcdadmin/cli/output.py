"""How results are written: keys as `display_segment` shows them, values as bytes or JSON.

JSON carries a value as text when it is UTF-8, else as base64, and says which (`encoding`),
so a script gets the exact bytes back either way.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import click

from etcdadmin.core.etcd import KeyValue
from etcdadmin.core.tree.names import display_segment


def show(key: bytes) -> str:
    return display_segment(key)


def write_stdout(data: bytes) -> None:
    """Write `data` whole to stdout, or raise BrokenPipeError (exit `exits.CLOSED_PIPE`).

    CPython's buffered writer returns a short count, without an error, when a pipe's reader
    goes away in the middle of one large write (`etcdadmin export DIR | head -1` wrote 72 KiB
    of 2 MB and exited 0), and `click.echo` ignores the count: so the rest is written here
    until it is all out or the next write raises.
    """
    sys.stdout.flush()  # whatever click wrote before goes first
    out, view = sys.stdout.buffer, memoryview(data)
    while view:
        view = view[out.write(view) :]
    out.flush()


def value_fields(value: bytes) -> dict[str, str]:
    try:
        return {"value": value.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"value": base64.b64encode(value).decode("ascii"), "encoding": "base64"}


def key_record(kv: KeyValue, *, with_value: bool = True) -> dict[str, Any]:
    record: dict[str, Any] = {"key": show(kv.key)}
    if with_value:
        record.update(value_fields(kv.value))
    record.update(
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        lease=kv.lease,
    )
    return record


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="print JSON for scripts")(f)
