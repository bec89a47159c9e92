"""The one rule for a directory's prefix (etcdadmin.core.tree.directories) and the agent status
keys that follow from it."""

from __future__ import annotations

import pytest

from etcdadmin.core.agents.status import status_prefix_for
from etcdadmin.core.config.mapping import split_key
from etcdadmin.core.errors import MappingError
from etcdadmin.core.tree.directories import directory_prefix, parent_directory
from watcher_agent.settings import AgentSettings, SettingsError

SPELLINGS = [
    ("hack", "hack/"),
    ("hack/", "hack/"),
    ("hack//", "hack/"),
    ("hack///", "hack/"),
    ("/hack", "/hack/"),
    ("/hack/", "/hack/"),
    ("/hack//", "/hack/"),
    ("//hack", "//hack/"),
    ("team/registry", "team/registry/"),
    ("team//registry/", "team//registry/"),
    ("/", "/"),
    ("//", "/"),
    ("é", "é/"),
]


@pytest.mark.parametrize(("name", "prefix"), SPELLINGS)
def test_every_spelling_of_a_directory_gives_one_prefix_as_str_and_as_bytes(name, prefix):
    assert directory_prefix(name) == prefix
    assert directory_prefix(name.encode()) == prefix.encode()


@pytest.mark.parametrize("name", ["", b""])
def test_an_empty_directory_name_is_refused_with_what_to_name_instead(name):
    with pytest.raises(MappingError, match="must not be empty; name one, such as `hack`"):
        directory_prefix(name)


@pytest.mark.parametrize(
    ("key", "directory"),
    [
        (b"hack/x", b"hack/"),
        (b"hack/sub/x", b"hack/sub/"),
        (b"/hack/x", b"/hack/"),
        (b"/x", b"/"),
        (b"hack//x", b"hack/"),
        (b"x", None),
    ],
)
def test_a_keys_parent_directory_follows_the_same_rule(key, directory):
    assert parent_directory(key) == directory


@pytest.mark.parametrize(
    ("directory", "status"),
    [
        ("hack", b"/etcdadmin/agents/hack/"),
        ("hack/", b"/etcdadmin/agents/hack/"),
        ("hack//", b"/etcdadmin/agents/hack/"),
        (b"hack", b"/etcdadmin/agents/hack/"),
        ("/hack", b"/etcdadmin/agents//hack/"),
        ("/hack/", b"/etcdadmin/agents//hack/"),
        ("team/registry", b"/etcdadmin/agents/team/registry/"),
    ],
)
def test_the_status_prefix_of_each_spelling(directory, status):
    assert status_prefix_for(directory) == status


def test_agents_of_hack_and_of_slash_hack_publish_under_different_keys():
    env = {"ETCD_HOST": "127.0.0.1:2379", "CONFIG": "/config.yml", "AGENT_ID": "a1"}
    plain = AgentSettings.from_env({**env, "WATCH_ETCD_DIR": "hack"})
    slashed = AgentSettings.from_env({**env, "WATCH_ETCD_DIR": "/hack"})
    trailing = AgentSettings.from_env({**env, "WATCH_ETCD_DIR": "hack//"})
    assert plain.status_key == "/etcdadmin/agents/hack/a1"  # what agents have always used
    assert trailing.status_key == plain.status_key
    assert slashed.status_key == "/etcdadmin/agents//hack/a1"
    assert (plain.watch_prefix, slashed.watch_prefix, trailing.watch_prefix) == (
        "hack/",
        "/hack/",
        "hack/",
    )


@pytest.mark.parametrize("directory", ["/", "//"])
def test_an_agent_refuses_to_watch_every_key_that_starts_with_a_slash(directory):
    env = {"ETCD_HOST": "127.0.0.1:2379", "CONFIG": "/config.yml", "WATCH_ETCD_DIR": directory}
    with pytest.raises(SettingsError, match="agents' own status keys"):
        AgentSettings.from_env(env)


def test_the_yaml_mapping_reads_keys_of_any_spelling_of_its_directory():
    for directory in ("hack", "hack/", "hack//"):
        assert split_key("hack/http/addr", directory) == ("http", "addr")
    with pytest.raises(MappingError, match="not inside the directory"):
        split_key("hack/http/addr", "/hack")
