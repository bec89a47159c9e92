"""Exit codes scripts can trust, and the one exception a command raises to end with one.

0 done; 1 a conflict (nothing written), differences found by `diff` (or by `backup verify`),
or a key `get` (or a backup) it did not find; 2 bad usage or input, or a write refused
(read-only, production without --yes); 3 etcd (or the backup location) unreachable, or it
refused the credentials or the request; 130 stopped by Ctrl-C (what was
written by then is complete and said); 141 the reader of stdout went away (`| head`), nothing
said; 70 a bug in etcdadmin (sysexits'
EX_SOFTWARE, so a script can tell "our fault" from every answer above).
"""

from __future__ import annotations

import click

OK = 0
CONFLICT = 1
NOT_FOUND = 1
DIFFERENT = 1
USAGE = 2
ETCD = 3
BUG = 70
INTERRUPTED = 130
# 128 + SIGPIPE: what a shell reports for a C tool that wrote to a closed pipe (`ls | head`
# under `set -o pipefail`), and not 1, which says "conflict or differences" here.
CLOSED_PIPE = 141


class CliError(click.ClickException):
    """One line on stderr and an exit code; never a traceback. Raise a subclass."""

    exit_code = BUG

    def format_message(self) -> str:
        # one line whatever the message holds (gRPC details may carry newlines)
        return " ".join(self.message.split())


class Conflict(CliError):
    exit_code = CONFLICT


class NotFound(CliError):
    exit_code = NOT_FOUND


class Refused(CliError):
    """Bad input, or a write the profile does not allow."""

    exit_code = USAGE


class Different(CliError):
    exit_code = DIFFERENT


class EtcdFailure(CliError):
    exit_code = ETCD


class Unreachable(CliError):
    """The backup location (Swift, a directory) cannot be reached or refused the credentials."""

    exit_code = ETCD


class Bug(CliError):
    exit_code = BUG


class Interrupted(CliError):
    exit_code = INTERRUPTED
