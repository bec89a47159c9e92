"""`etcdadmin certs init`: a throw-away CA and the certificates a cluster and a client need."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from etcdadmin.core.certs.authority import DEFAULT_HOSTS, etcd_flags, init_cluster_certificates


@click.group()
def certs() -> None:
    """TLS certificates for etcd."""


@certs.command("init")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--hosts",
    default=",".join(DEFAULT_HOSTS),
    show_default=True,
    help="names and addresses clients reach the members by (comma separated)",
)
@click.option("--members", type=click.IntRange(1, 9), default=1, show_default=True)
@click.option(
    "--client-user",
    default="root",
    show_default=True,
    help="the client certificate's CN: the etcd user it logs in as",
)
def init(directory: Path, hosts: str, members: int, client_user: str) -> None:
    """Make a CA, per member a server and a peer certificate, and a client certificate in DIR
    (keys mode 0600), then print the etcd flags that use them.

    This CA is throw-away: keep ca.key offline or delete it; a new run needs an empty DIR.
    """
    made = init_cluster_certificates(
        directory, hosts=hosts, members=members, client_user=client_user
    )
    click.echo(f"CA: {made.ca} (its key {made.ca_key}: keep it away from the members)")
    for member in made.members:
        click.echo(f"\n# member {member.name}: use https:// in its client and peer URLs")
        click.echo(f"etcd --name {member.name} \\")
        click.echo("  " + " \\\n  ".join(_pairs(etcd_flags(made, member))))
    click.echo(f"\n# a client, logging in as etcd user {made.client_user!r} by its certificate:")
    click.echo(
        f"etcdadmin --endpoints https://127.0.0.1:2379 --cacert {shlex.quote(str(made.ca))} "
        f"--cert {shlex.quote(str(made.client.cert))} --key {shlex.quote(str(made.client.key))} ls"
    )
    click.echo(
        f"ETCDCTL_API=3 etcdctl --cacert {shlex.quote(str(made.ca))} "
        f"--cert {shlex.quote(str(made.client.cert))} "
        f"--key {shlex.quote(str(made.client.key))} endpoint health"
    )


def _pairs(flags: list[str]) -> list[str]:
    """`--flag value` pairs on one line each (flags without a value alone)."""
    lines: list[str] = []
    for item in flags:
        if item.startswith("--"):
            lines.append(item)
        else:
            lines[-1] += " " + shlex.quote(item)
    return lines


COMMANDS = (certs,)
