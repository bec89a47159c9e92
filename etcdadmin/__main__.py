"""`python -m etcdadmin`: the same as the `etcdadmin` command."""

from etcdadmin.cli.main import run

run()
