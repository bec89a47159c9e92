"""How results are written: keys as `display_segment` shows them, values as bytes or JSON.

JSON carries a value as text when it is UTF-8, else as base64, and says which (`encoding`),
so a script gets the exact bytes back either way.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import click

from etcdadmin.core.etcd import KeyValue
from etcdadmin.core.tree.names import display_segment


def show(key: bytes) -> str:
    return display_segment(key)


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
