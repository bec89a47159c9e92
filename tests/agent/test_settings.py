"""Agent settings and apply helpers that need no service."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdadmin.core.certs.authority import init_cluster_certificates
from watcher_agent.apply import stop_timeout_for
from watcher_agent.preflight_settings import PreflightSettings
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
    assert settings.state_dir == Path("/var/lib/watcher-agent/config.yml")
    # The key files are read at start, after the environment (`load_private_keys`).
    assert settings.private_key == "/id_rsa"


def test_comma_lists_of_endpoints_and_containers_are_accepted():
    env = {**SEED, "ETCD_HOST": "a:1,b:2", "SERVE_CONTAINER": "r1, r2"}
    settings = AgentSettings.from_env(env)
    assert settings.etcd.endpoints == ("a:1", "b:2")
    assert settings.containers == ("r1", "r2")


def test_an_https_etcd_host_means_tls_even_without_etcd_cacert():
    settings = AgentSettings.from_env({**SEED, "ETCD_HOST": "https://a:1,https://b:2"})
    assert settings.etcd.endpoints == ("a:1", "b:2")
    assert settings.etcd.secure and settings.etcd.ca_file is None
    assert not AgentSettings.from_env({**SEED, "ETCD_HOST": "http://a:1"}).etcd.secure


def test_a_client_certificate_without_its_key_is_refused_naming_both(tmp_path):
    pem = tmp_path / "file.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(SettingsError, match="ETCD_CERT and ETCD_KEY go together"):
        AgentSettings.from_env({**SEED, "ETCD_CACERT": str(pem), "ETCD_CERT": str(pem)})


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
        ({"STATUS_TTL": "2"}, "STATUS_TTL=2 is out of range: use 5 to"),
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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_LEVEL": ""}, "LOG_LEVEL='' is not a level"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not a level"),
        ({"ETCD_TIMEOUT": "9" * 25}, "ETCD_TIMEOUT=9+ is out of range"),
        ({"ETCD_TIMEOUT": "0"}, "ETCD_TIMEOUT=0 must be more than zero"),
        ({"HEALTH_TIMEOUT": "0s"}, "HEALTH_TIMEOUT=0s must be more than zero"),
        ({"RESYNC_INTERVAL": "0"}, "RESYNC_INTERVAL=0 must be more than zero"),
        ({"RENDER_TIMEOUT": "0ms"}, "RENDER_TIMEOUT=0ms must be more than zero"),
        ({"DEBOUNCE": "-1"}, "DEBOUNCE='-1' is not a duration"),
        ({"DEBOUNCE": "10s", "DEBOUNCE_MAX": "5s"}, "DEBOUNCE_MAX .* is shorter than DEBOUNCE"),
        ({"STATUS_TTL": "9" * 5000}, "STATUS_TTL='9+' is not a whole number"),
        ({"STATUS_TTL": "99999999999"}, "STATUS_TTL=99999999999 is out of range"),
        ({"HISTORY_KEEP": "-3"}, "HISTORY_KEEP=-3 is out of range"),
        ({"RENDER_MEMORY": "1K"}, "RENDER_MEMORY=1K is out of range"),
        ({"ETCD_HOST": "ftp://etcd:2379"}, "ETCD_HOST: .*'ftp://etcd:2379' has the scheme"),
        ({"ETCD_HOST": "etcd:99999"}, "has port 99999: ports run from 1 to 65535"),
        ({"ETCD_HOST": "etcd:0"}, "has port 0"),
        ({"ETCD_HOST": "a b:2379"}, "is not host:port"),
        ({"ETCD_HOST": "::1:2379"}, "is not host:port"),
        ({"ETCD_HOST": "etcd:\u00b2"}, "is not host:port"),
        ({"ETCD_HOST": "https://root:pw@etcd:2379"}, "ETCD_HOST: etcd endpoint 1 holds a user"),
        ({"METRICS_ADDR": "127.0.0.1:70000"}, "METRICS_ADDR=127.0.0.1:70000"),
    ],
)
def test_absurd_or_empty_settings_are_refused_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        AgentSettings.from_env({**SEED, **env})


def test_a_password_file_that_is_not_utf8_is_refused(tmp_path):
    secret = tmp_path / "password"
    secret.write_bytes(b"\xff\xfepw")
    env = {**SEED, "ETCD_USER": "agent", "ETCD_PASSWORD_FILE": str(secret)}
    with pytest.raises(SettingsError, match=r"ETCD_PASSWORD_FILE=.* is not UTF-8 text"):
        AgentSettings.from_env(env)


def test_each_config_file_gets_its_own_state_directory(tmp_path):
    one = AgentSettings.from_env({**SEED, "CONFIG": str(tmp_path / "a.yml")})
    two = AgentSettings.from_env({**SEED, "CONFIG": str(tmp_path / "b.yml")})
    assert one.state_dir == tmp_path / ".watcher-agent" / "a.yml"
    assert two.state_dir == tmp_path / ".watcher-agent" / "b.yml"


def test_the_agent_id_is_its_etcd_user_so_a_teams_status_grant_matches(tmp_path):
    as_user = AgentSettings.from_env({**SEED, "ETCD_USER": "agent-1", "ETCD_PASSWORD": "pw"})
    assert as_user.agent_id == "agent-1"
    assert as_user.status_key == "/etcdadmin/agents/hack/agent-1"

    certs = init_cluster_certificates(tmp_path / "pki", client_user="agent-2")
    by_certificate = AgentSettings.from_env(
        {
            **SEED,
            "ETCD_CACERT": str(certs.ca),
            "ETCD_CERT": str(certs.client.cert),
            "ETCD_KEY": str(certs.client.key),
        }
    )
    assert by_certificate.agent_id == "agent-2"

    differs = AgentSettings.from_env(
        {**SEED, "ETCD_USER": "agent-1", "ETCD_PASSWORD": "pw", "AGENT_ID": "other"}
    )
    assert differs.agent_id == "other"
    assert any("AGENT_ID=other differs from the etcd user agent-1" in w for w in differs.warnings)


def test_preflight_defaults_to_a_canary_with_a_served_container_and_to_the_command_alone():
    def preflight(**env: str) -> PreflightSettings:
        full = {**SEED, **env}
        return PreflightSettings.from_env(full, AgentSettings.from_env(full))

    seeded = preflight()
    assert (seeded.mode, seeded.addr_key, seeded.port) == ("container", "http.addr", None)
    assert seeded.staging_dir == Path("/var/lib/watcher-agent/config.yml/preflight")
    assert preflight(SERVE_CONTAINER="").mode == "off"
    checked = preflight(PREFLIGHT_CMD="check-config --file {}")
    assert (checked.mode, checked.command) == ("cmd", ("check-config", "--file", "{}"))
    both = preflight(PREFLIGHT="container", PREFLIGHT_CMD="true", PREFLIGHT_PORT="5001")
    assert (both.mode, both.command, both.port) == ("container", ("true",), 5001)
    assert preflight(PREFLIGHT="off").enabled is False


@pytest.mark.parametrize(
    "env",
    [
        {"PREFLIGHT": "canary"},
        {"PREFLIGHT": "container", "SERVE_CONTAINER": ""},
        {"PREFLIGHT": "cmd"},
        {"PREFLIGHT_CMD": "check 'unterminated"},
        {"PREFLIGHT_PORT": "70000"},
        {"PREFLIGHT_ADDR_KEY": "http/addr"},
    ],
    ids=[
        "unknown mode",
        "canary without container",
        "cmd without command",
        "bad quoting",
        "bad port",
        "slash key",
    ],
)
def test_a_bad_preflight_setting_is_refused_naming_the_variable(env):
    full = {**SEED, **env}
    with pytest.raises(SettingsError, match="PREFLIGHT"):
        PreflightSettings.from_env(full, AgentSettings.from_env(full))
