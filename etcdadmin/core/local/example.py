"""The example tree a new user's sandbox starts with: a registry config in two environments."""

from __future__ import annotations

import logging
from typing import Any

from etcdadmin.core.assets import read_text
from etcdadmin.core.config import mapping
from etcdadmin.core.config.documents import load_yaml
from etcdadmin.core.errors import MappingError
from etcdadmin.core.etcd import Compare, EtcdConnection, TxnOp

log = logging.getLogger(__name__)

# The test environment's config; production differs in the few keys seed_example changes.
EXAMPLE = "example/registry.yml"


def example_config() -> dict[str, Any]:
    """The example registry config, parsed afresh on every call (callers change it)."""
    config = load_yaml(read_text(EXAMPLE), f"the packaged {EXAMPLE}")
    if not isinstance(config, dict):
        raise MappingError(
            f"the packaged {EXAMPLE} is not a YAML mapping: reinstall etcdadmin", key=EXAMPLE
        )
    return config


def seed_example(conn: EtcdConnection) -> bool:
    """Write a small example tree when the key space is empty; returns whether it wrote.

    Two environments of a registry config, `example-test/` and `example-production/`,
    differing in a few keys, so that the tree, the editor and the environment comparison have
    something real to show. The whole tree is one transaction that writes only keys that do not
    exist, so a seed racing another writer never overwrites anything.
    """
    # One key is enough to know the key space is not empty (etcd still counts the range, but
    # nothing else crosses the wire).
    if next(conn.iter_plain_pages(b"", page_size=1)).keys:
        return False
    test_config = example_config()
    production_config = example_config()
    production_config["log"]["level"] = "info"
    production_config["log"]["fields"]["environment"] = "production"
    production_config["http"]["secret"] = "rotate-me-before-release"
    production_config["storage"]["cache"]["blobdescriptor"] = "redis"
    production_config["redis"] = {"addr": "redis.internal:6379", "db": 0}
    del production_config["storage"]["delete"]
    keys = {
        **mapping.flatten(test_config, "example-test/"),
        **mapping.flatten(production_config, "example-production/"),
    }
    encoded = sorted((key.encode("utf-8"), value.encode("utf-8")) for key, value in keys.items())
    result = conn.txn(
        [Compare(key, "create", "==", 0) for key, _ in encoded],
        [TxnOp("put", key, value) for key, value in encoded],
    )
    log.info("example tree %s", "written" if result.succeeded else "skipped: keys appeared")
    return result.succeeded
