"""How KEY and DIR arguments are typed: text, with `\\xNN` for bytes that are not UTF-8.

Keys go through `parse_display_segment` (the inverse of how every listing shows them) and
directories then through `directory_prefix`, the one rule for what a directory name covers.
"""

from __future__ import annotations

import click

from etcdadmin.core.errors import EtcdAdminError
from etcdadmin.core.tree.directories import directory_prefix
from etcdadmin.core.tree.names import parse_display_segment


class KeyName(click.ParamType):
    """A key as typed: the bytes it stands for."""

    name = "KEY"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> bytes:
        if isinstance(value, bytes):
            return value
        try:
            key = parse_display_segment(str(value))
        except EtcdAdminError as exc:
            self.fail(str(exc), param, ctx)
        if not key:
            self.fail("the key must not be empty", param, ctx)
        return key


class DirectoryName(click.ParamType):
    """A directory as typed (`registry-test` or `registry-test/`): its key prefix."""

    name = "DIR"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> bytes:
        if isinstance(value, bytes):
            return value
        try:
            return directory_prefix(parse_display_segment(str(value)))
        except EtcdAdminError as exc:
            self.fail(str(exc), param, ctx)


KEY = KeyName()
DIR = DirectoryName()
