"""Agent settings and apply helpers that need no service."""

from __future__ import annotations

from pathlib import Path

import pytest

from watcher_agent.apply import stop_timeout_for
from watcher_agent.settings import AgentSettings, SettingsError, parse_duration

SEED = {
    "ETCD_HOST": "127.0.0.1:2379",
    "WATCH_ETCD_DIR": "hack",
    "CONFIG": "/config.yml",
    "PRIVATE_KEY": "/id_rsa",
    "SERVE_CONTAINER": "registry",
}


def test_the_seeds_variables_are_enough_and_the_status_key_sits_outside_the_directory():
    settings = AgentSettings.from_env(SEED)
    assert settings.etcd.endpoints == ("127.0.0.1:2379",)
    assert settings.watch_prefix == "hack/"
    assert settings.containers == ("registry",)
    assert settings.status_key.startswith("/etcdadmin/agents/hack/")
    assert not settings.status_key.startswith(settings.watch_prefix)
    # A config at the root of the container: its directory is not a mount of its own.
    assert settings.state_dir == Path("/var/lib/watcher-agent")
    assert any("PRIVATE_KEY" in w for w in settings.warnings), "a missing key file is flagged"


def test_comma_lists_of_endpoints_and_containers_are_accepted():
    env = {**SEED, "ETCD_HOST": "a:1,b:2", "SERVE_CONTAINER": "r1, r2"}
    settings = AgentSettings.from_env(env)
    assert settings.etcd.endpoints == ("a:1", "b:2")
    assert settings.containers == ("r1", "r2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WATCH_ETCD_DIR": ""}, "WATCH_ETCD_DIR is not set"),
        ({"WATCH_ETCD_DIR": "/"}, "not the whole key space"),
        ({"CONFIG": ""}, "CONFIG is not set"),
        ({"ETCD_HOST": "localhost"}, "ETCD_HOST"),
        ({"DEBOUNCE": "soon"}, "DEBOUNCE='soon' is not a duration"),
        ({"ETCD_USER": "root"}, "ETCD_USER and ETCD_PASSWORD"),
        ({"ETCD_CACERT": "/nonexistent/ca.crt"}, "ETCD_CACERT=/nonexistent/ca.crt: no such file"),
        ({"METRICS_ADDR": "9180"}, "METRICS_ADDR"),
        ({"STATUS_TTL": "2"}, "STATUS_TTL must be at least"),
    ],
)
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        AgentSettings.from_env({**SEED, **env})


def test_the_password_never_shows_in_the_settings_repr():
    settings = AgentSettings.from_env({**SEED, "ETCD_USER": "agent", "ETCD_PASSWORD": "s3cret"})
    assert settings.etcd.password == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("2s", 2.0), ("1.5", 1.5), ("5m", 300.0), ("1h", 3600.0)]
)
def test_durations(text, seconds):
    assert parse_duration(text, "X") == seconds


@pytest.mark.parametrize(
    ("config", "timeout"),
    [
        (b"http:\n  draintimeout: 60s\n", 65),
        (b"http:\n  draintimeout: 1m30s\n", 95),
        (b"http:\n  addr: :5000\n", 10),
        (b"not: [valid", 10),
    ],
)
def test_the_stop_timeout_covers_the_registrys_drain_timeout(config, timeout):
    assert stop_timeout_for(config) == timeout
