"""Behaviour of the etcd keys <-> YAML config mapping (etcdadmin.core.config.mapping)."""

from __future__ import annotations

import copy
import datetime
import random
import string
from typing import Any

import pytest
import yaml

from etcdadmin.core.config.mapping import (
    flatten,
    flatten_text,
    format_value,
    overlay,
    parse_value,
    render,
    split_key,
)
from etcdadmin.core.errors import EtcdAdminError, MappingError

PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUQm9ndXNDZXJ0aWZpY2F0ZUZvclRlc3RzMAoGCCqGSM49\n"
    "BAMCMBIxEDAOBgNVBAMMB3Rlc3QtY2EwHhcNMjQwMTAxMDAwMDAwWhcNMzQwMTAx\n"
    "MDAwMDAwWjASMRAwDgYDVQQDDAd0ZXN0LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "-----END CERTIFICATE-----\n"
)

REGISTRY_CONFIG = """\
# Docker registry configuration (distribution), as shipped in the image.
version: 0.1
log:
  accesslog:
    disabled: false
  level: info
  formatter: text
  fields:
    service: registry
    environment: staging
storage:
  swift:
    username: registry
    password: "p@ss: w*rd&!"
    authurl: https://keystone.example.com:5000/v3
    tenant: registry
    tenantid: 7a3e0b4f5c6d
    domain: Default
    region: RegionOne
    container: docker-registry
    rootdirectory: /registry
    insecureskipverify: false
    chunksize: 5242880
    prefix: ""
    secretkey: "0755"
    accesskey:
    authversion: 3
    endpointtype: public
  delete:
    enabled: true
  redirect:
    disable: true
  cache:
    blobdescriptor: redis
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
    readonly:
      enabled: false
auth:
  htpasswd:
    realm: basic-realm
    path: /auth/htpasswd
middleware:
  registry:
    - name: ARegistryMiddleware
      options:
        foo: bar
  storage:
    - name: cloudfront
      options:
        baseurl: https://my.cloudfronted.domain.com/
        privatekey: /path/to/pem
        keypairid: cloudfrontkeypairid
        duration: 3000s
        ipfilteredby: awsregion
        awsregion: us-east-1, use-east-2
        updatefrequency: 12h
        iprangesurl: https://ip-ranges.amazonaws.com/ip-ranges.json
http:
  addr: :5000
  prefix: /
  host: https://registry.example.com
  secret: asecretforlocaldevelopment
  relativeurls: false
  draintimeout: 60s
  tls:
    certificate: /etc/registry/tls.crt
    key: /etc/registry/tls.key
    clientcas:
      - /path/to/ca.pem
      - /path/to/another/ca.pem
    minimumtls: tls1.2
  debug:
    addr: :5001
    prometheus:
      enabled: true
      path: /metrics
  headers:
    X-Content-Type-Options: [nosniff]
  http2:
    disabled: false
notifications:
  events:
    includereferences: true
  endpoints:
    - name: alistener
      disabled: false
      url: https://my.listener.com/event
      headers:
        Authorization: [Bearer <token>]
      timeout: 1s
      threshold: 10
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        mediatypes:
          - application/octet-stream
        actions:
          - pull
    - name: audit
      url: https://audit.example.com/hook
      headers: {}
      timeout: 500ms
      threshold: 5
redis:
  addr: localhost:6379
  password: "true"
  db: 0
  dialtimeout: 10ms
  readtimeout: 10ms
  writetimeout: 10ms
  pool:
    maxidle: 16
    maxactive: 64
    idletimeout: 300s
  tls:
    enabled: false
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
  http:
    - uri: http://server.to.check/must/return/200
      headers:
        Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]
      statuscode: 200
      timeout: 3s
      interval: 10s
      threshold: 3
  tcp:
    - addr: redis-server.domain.com:6379
      timeout: 3s
      interval: 10s
      threshold: 3
proxy:
  remoteurl: https://registry-1.docker.io
  username: "[username]"
  password: "{password}"
  ttl: 168h
validation:
  manifests:
    urls:
      allow:
        - ^https?://([^/]+\\.)*example\\.com/
      deny:
        - ^https?://www\\.example\\.com/
"""


def same(left: Any, right: Any) -> bool:
    """Equality that also compares types (1 == True == 1.0 in Python, not in a config)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return len(left) == len(right) and all(
            any(same(key, other) for other in right) and same(value, right[key])
            for key, value in left.items()
        )
    if isinstance(left, list):
        return len(left) == len(right) and all(map(same, left, right))
    return bool(left == right)


def test_the_strict_comparison_helper_tells_types_apart() -> None:
    assert same({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not same({"a": 1}, {"a": True})
    assert not same([1], [1.0])
    assert not same({1: "x"}, {"1": "x"})
    assert not same({"a": [1]}, {"a": [1, 2]})


# --------------------------------------------------------------------------------------------
# Value typing
# --------------------------------------------------------------------------------------------

TYPING_TABLE: list[tuple[str, Any]] = [
    ("5000", 5000),
    ("-1", -1),
    ("0", 0),
    ("1.5", 1.5),
    ("-0.25", -0.25),
    ("2.0e-3", 0.002),
    ("1.0E+20", 1e20),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("False", False),
    ("FALSE", False),
    ("null", None),
    ("~", None),
    ("", ""),
    (":5000", ":5000"),
    ("0755", "0755"),
    ("00", "00"),
    ("-0755", "-0755"),
    ("1.", "1."),
    (".5", ".5"),
    ("1e3", "1e3"),
    ("0x10", "0x10"),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("tRuE", "tRuE"),
    ("NULL", "NULL"),
    ("Null", "Null"),
    (".inf", ".inf"),
    ("1_000", "1_000"),
    (" 5000", " 5000"),
    ("5000 ", "5000 "),
    ("\u0665", "\u0665"),  # an Arabic-Indic digit is not an ASCII number
    ('"5000"', "5000"),
    ("'5000'", "5000"),
    ('"true"', "true"),
    ('""', ""),
    ("''", ""),
    ("'it''s'", "it's"),
    ('"tab\\there"', "tab\there"),
    ('"caf\\u00e9"', "café"),
    ('"', '"'),
    ("'", "'"),
    ('"abc', '"abc'),
    ("abc'", "abc'"),
    ("{a: 1}", {"a": 1}),
    ("{}", {}),
    ("[]", []),
    ("[1, 2]", [1, 2]),
    ("[nosniff]", ["nosniff"]),
    ("{user: admin, ports: [22, 80]}", {"user": "admin", "ports": [22, 80]}),
    ("a: 1\nb: [x]\n", {"a": 1, "b": ["x"]}),
    ("\n\nname: registry\nport: 5000", {"name": "registry", "port": 5000}),
    ("- a\n- b\n", ["a", "b"]),
    ("-\n  x: 1\n", [{"x": 1}]),
    ("key:\r\n  - 1\r\n", {"key": [1]}),
    (PEM, PEM),
    ("line one\nline two", "line one\nline two"),
    ("5000\n", "5000\n"),
    ("# note: this\nis text", "# note: this\nis text"),
    ("  a: 1\nb: 2", "  a: 1\nb: 2"),
    ("http://example.com:80/x\nmore", "http://example.com:80/x\nmore"),
    ("-not a list\n-x", "-not a list\n-x"),
    ("p@ss: w*rd&!", "p@ss: w*rd&!"),
    ("- not a list", "- not a list"),
    ("&anchor *alias !tag %dir @at `tick` | > #", "&anchor *alias !tag %dir @at `tick` | > #"),
    ("a, b: {c} [d]", "a, b: {c} [d]"),
    ("  leading and trailing  ", "  leading and trailing  "),
]


@pytest.mark.parametrize(("text", "expected"), TYPING_TABLE)
def test_a_value_is_typed_by_the_documented_rules(text: str, expected: Any) -> None:
    assert same(parse_value(text, "hack/x"), expected)


def test_quoting_a_number_forces_a_string() -> None:
    assert parse_value("5000") == 5000
    assert parse_value('"5000"') == "5000"
    assert isinstance(parse_value('"5000"'), str)


def test_a_pem_certificate_is_kept_byte_for_byte() -> None:
    value = parse_value(PEM.encode("ascii"), "hack/http/tls/ca")
    assert value == PEM
    assert value.encode("ascii") == PEM.encode("ascii")


def test_a_password_with_yaml_special_characters_is_kept_verbatim() -> None:
    for password in ["p@ss: w*rd&!", "a: b: c", "!secret", "*star", "&amp", "%25", "|pipe", "#x"]:
        assert parse_value(password, "hack/storage/swift/password") == password


def test_bytes_values_are_decoded_as_utf8() -> None:
    assert parse_value("café".encode(), "hack/x") == "café"
    assert parse_value(b"5000", "hack/x") == 5000


def test_undecodable_bytes_name_the_key() -> None:
    with pytest.raises(MappingError) as caught:
        parse_value(b"\xff\xfesecret", "hack/storage/swift/password")
    assert caught.value.key == "hack/storage/swift/password"
    assert "hack/storage/swift/password" in str(caught.value)
    assert "UTF-8" in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "secret",
    [
        "{password: s3cr3t-value",
        "[s3cr3t-value",
        "{s3cr3t-value: [}",
        "{a: 1} s3cr3t-value",
        "{a: 1}\n---\n{s3cr3t-value: 2}",
        "[s3cr3t-value]: 1",
        "{a: 2020-13-45, b: s3cr3t-value}",
    ],
)
def test_invalid_flow_yaml_names_the_key_and_hides_the_value(secret: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_value(secret, "hack/storage/swift/password")
    message = str(caught.value)
    assert caught.value.key == "hack/storage/swift/password"
    assert "hack/storage/swift/password" in message
    assert "not valid YAML" in message or "not a YAML mapping or list" in message
    assert "s3cr3t" not in message
    # The parser's own error (which quotes the text) is not chained into logs either.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "secret",
    [
        "user: s3cr3t-value\n  bad: indent\n",
        "- s3cr3t-value\nkey: value\n",
        "name: [s3cr3t-value\nport: 1\n",
    ],
)
def test_invalid_multi_line_yaml_names_the_key_and_hides_the_value(secret: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_value(secret, "hack/auth")
    assert caught.value.key == "hack/auth"
    assert "hack/auth" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "secret",
    ['"s3cr3t" and "more"', "'s3cr3t' + 'x'", '"s3cr3t\\"', '"s3cr3t" # c"', '"a": "s3cr3t"'],
)
def test_invalid_quoting_names_the_key_and_hides_the_value(secret: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_value(secret, "hack/redis/password")
    assert caught.value.key == "hack/redis/password"
    assert "quote" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_error_messages_cope_with_braces_in_key_names() -> None:
    key = "hack/{weird}/{0}/x"
    for value in ['"bad" quote"', "[bad", "a: 1\n b: [2\n"]:
        with pytest.raises(MappingError) as caught:
            parse_value(value, key)
        assert key in str(caught.value)


def test_mapping_errors_belong_to_the_project_error_hierarchy() -> None:
    with pytest.raises(EtcdAdminError):
        parse_value("[", "hack/x")


# --------------------------------------------------------------------------------------------
# Writing values
# --------------------------------------------------------------------------------------------

FORMAT_TABLE: list[tuple[Any, str]] = [
    (5000, "5000"),
    (-3, "-3"),
    (1.5, "1.5"),
    (0.1, "0.1"),
    (1e20, "1.0e+20"),
    (1.5e-07, "1.5e-07"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
    ("registry", "registry"),
    (":5000", ":5000"),
    ("p@ss: w*rd&!", "p@ss: w*rd&!"),
    ("", ""),
    (PEM, PEM),
    ("café ☕", "café ☕"),
    ("5000", '"5000"'),
    ("1.5", '"1.5"'),
    ("true", '"true"'),
    ("null", '"null"'),
    ("~", '"~"'),
    ("{x", '"{x"'),
    ("[nosniff]", '"[nosniff]"'),
    ('"q"', '"\\"q\\""'),
    ("'q'", "\"'q'\""),
    ("a: 1\nb: 2", '"a: 1\\nb: 2"'),
    ("- a\n- b", '"- a\\n- b"'),
    ("back\\slash: x\ny", '"back\\\\slash: x\\ny"'),
    ("naïve: ✓\nz", '"naïve: ✓\\nz"'),
    ({}, "{}"),
    ([], "[]"),
    ({"a": 1, "b": [True, None]}, "{a: 1, b: [true, null]}"),
]


@pytest.mark.parametrize(("value", "text"), FORMAT_TABLE)
def test_a_value_is_written_canonically(value: Any, text: str) -> None:
    assert format_value(value) == text
    assert same(parse_value(text), value)


ROUND_TRIP_VALUES: list[Any] = [
    *(value for value, _text in FORMAT_TABLE),
    *(expected for _text, expected in TYPING_TABLE),
    -0.0,
    123456789012345678901234567890,
    2.5e-300,
    1.7976931348623157e308,
    "\t",
    "\r",
    "\r\n",
    "\n",
    " ",
    "a\x00b",
    "bell\x07",
    "esc\x1b[0m",
    "nel\x85",
    "ls\u2028ps\u2029",
    "\ufeffbom",
    "nbsp\xa0",
    "emoji 😀 and 𝄞",
    "\x7f",
    "\ue000private",
    "\ufffe",
    '"',
    "'",
    "\\",
    '"\\"',
    "a\\nb",
    "it's",
    "'it''s'",
    "{}",
    "[]",
    "-",
    "- ",
    "-\n",
    "key:\n",
    "key:",
    "x\n- y",
    "trailing newline\n",
    "  indented\n  block",
    {"0": "a", "1": "b"},
    {1: "int key", 2.5: "float key", False: "bool key", None: "null key"},
    {"nested": {"deep": [[], {}, [[1]], {"k": None}]}},
    {"a/b": 1, "": 2},
    ["p@ss: w*rd&!", "5000", 5000, "line\nbreak"],
    {"when": datetime.date(2024, 1, 2), "inf": float("inf"), "ninf": float("-inf")},
    [{"x": "\u2028"}, "\x85"],
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES)
def test_a_written_value_reads_back_equal(value: Any) -> None:
    text = format_value(value)
    assert same(parse_value(text), value)
    if not isinstance(value, str):
        assert "\n" not in text  # numbers and flow YAML are written on one line


def test_non_ascii_text_stays_readable_when_quoted() -> None:
    assert format_value("über: 5\nçà") == '"über: 5\\nçà"'
    assert format_value("5😀\n- x").count("😀") == 1


def test_seeded_random_values_read_back_equal() -> None:
    rng = random.Random(20240501)
    for _ in range(3000):
        value = random_value(rng, depth=2)
        text = format_value(value)
        assert same(parse_value(text, "hack/random"), value), (value, text)


def test_infinite_floats_cannot_be_written_as_a_plain_value() -> None:
    with pytest.raises(MappingError) as caught:
        format_value(float("inf"), "hack/x")
    assert caught.value.key == "hack/x"
    with pytest.raises(MappingError):
        format_value(float("nan"))


def test_objects_yaml_cannot_write_are_rejected() -> None:
    with pytest.raises(MappingError):
        format_value(object())
    with pytest.raises(MappingError):
        format_value({"x": object()})


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", ["hack", "hack/"])
def test_a_key_is_split_relative_to_the_directory(directory: str) -> None:
    assert split_key("hack/storage/swift/password", directory) == ("storage", "swift", "password")
    assert split_key("hack/version", directory) == ("version",)


@pytest.mark.parametrize("key", ["hack", "hack/"])
def test_the_directory_key_itself_has_no_segments(key: str) -> None:
    assert split_key(key, "hack") == ()
    assert split_key(key, "hack/") == ()


def test_leading_slash_directories_only_match_leading_slash_keys() -> None:
    assert split_key("/hack/http/addr", "/hack") == ("http", "addr")
    with pytest.raises(MappingError):
        split_key("hack/http/addr", "/hack")
    with pytest.raises(MappingError):
        split_key("/hack/http/addr", "hack")


def test_a_directory_with_a_common_prefix_is_a_different_directory() -> None:
    with pytest.raises(MappingError) as caught:
        split_key("hackers/x", "hack")
    assert caught.value.key == "hackers/x"


@pytest.mark.parametrize("key", ["hack/a//b", "hack/a/", "hack//a", "hack/a/b//"])
def test_empty_segments_are_rejected_naming_the_key(key: str) -> None:
    with pytest.raises(MappingError) as caught:
        split_key(key, "hack")
    assert caught.value.key == key
    assert key in str(caught.value)


def test_segments_may_hold_any_other_characters() -> None:
    assert split_key("hack/a b/X-Content-Type-Options/ä.b:c", "hack") == (
        "a b",
        "X-Content-Type-Options",
        "ä.b:c",
    )


def test_an_empty_directory_is_rejected() -> None:
    with pytest.raises(MappingError):
        split_key("a/b", "")


# --------------------------------------------------------------------------------------------
# Overlay
# --------------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "version": 0.1,
    "storage": {"swift": {"username": "registry", "password": "base-secret", "chunksize": 5}},
    "http": {"addr": ":5000", "headers": {"X-Content-Type-Options": ["nosniff"]}},
    "notifications": {"endpoints": [{"name": "a", "url": "https://a"}]},
    "list": ["x", "y"],
    "empty": None,
}


def test_a_key_overlays_the_matching_config_path() -> None:
    result = overlay(BASE, {"hack/storage/swift/password": "new-secret"}, "hack")
    assert result["storage"]["swift"] == {
        "username": "registry",
        "password": "new-secret",
        "chunksize": 5,
    }
    assert result["http"] == BASE["http"]


def test_a_value_is_typed_when_overlaid() -> None:
    result = overlay(BASE, {"hack/storage/swift/chunksize": b"5242880"}, "hack/")
    assert same(result["storage"]["swift"]["chunksize"], 5242880)


def test_overlay_does_not_modify_the_base() -> None:
    before = copy.deepcopy(BASE)
    result = overlay(BASE, {"hack/list/0": "z", "hack/storage/swift/password": "x"}, "hack")
    assert before == BASE
    result["http"]["headers"]["X-Content-Type-Options"].append("changed")
    assert before == BASE


def test_deleting_a_key_restores_the_base_value() -> None:
    entries = {"hack/storage/swift/password": "from-etcd", "hack/http/addr": ":6000"}
    assert overlay(BASE, entries, "hack")["storage"]["swift"]["password"] == "from-etcd"
    del entries["hack/storage/swift/password"]
    result = overlay(BASE, entries, "hack")
    assert result["storage"]["swift"]["password"] == "base-secret"
    assert result["http"]["addr"] == ":6000"


def test_no_entries_give_an_equal_copy_of_the_base() -> None:
    result = overlay(BASE, {}, "hack")
    assert same(result, BASE)
    assert result is not BASE


def test_a_deep_key_creates_missing_mappings() -> None:
    result = overlay(BASE, {"hack/redis/pool/maxidle": "16"}, "hack")
    assert result["redis"] == {"pool": {"maxidle": 16}}


def test_a_list_element_is_replaced_by_index() -> None:
    result = overlay(BASE, {"hack/list/1": "Y", "hack/notifications/endpoints/0/url": "b"}, "hack")
    assert result["list"] == ["x", "Y"]
    assert result["notifications"]["endpoints"] == [{"name": "a", "url": "b"}]


def test_the_next_index_appends_to_a_list() -> None:
    result = overlay(BASE, {"hack/list/2": "z", "hack/list/3": "w"}, "hack")
    assert result["list"] == ["x", "y", "z", "w"]


def test_list_indices_are_applied_in_numeric_order() -> None:
    entries = {f"hack/items/{i}": str(i) for i in range(12)}
    result = overlay({"items": []}, entries, "hack")
    assert result["items"] == list(range(12))


def test_appending_a_mapping_to_a_list_of_mappings() -> None:
    result = overlay(BASE, {"hack/notifications/endpoints/1/name": "b"}, "hack")
    assert result["notifications"]["endpoints"] == [
        {"name": "a", "url": "https://a"},
        {"name": "b"},
    ]


def test_an_index_beyond_the_end_of_a_list_names_the_key_and_the_length() -> None:
    with pytest.raises(MappingError) as caught:
        overlay(BASE, {"hack/list/3": "s3cr3t-element"}, "hack")
    assert caught.value.key == "hack/list/3"
    assert "hack/list/3" in str(caught.value)
    assert "list of 2 elements" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("segment", ["name", "-1", "01", "1.0"])
def test_a_segment_that_is_not_an_index_is_rejected_on_a_list(segment: str) -> None:
    key = f"hack/list/{segment}"
    with pytest.raises(MappingError) as caught:
        overlay(BASE, {key: "v"}, "hack")
    assert caught.value.key == key
    assert "list of 2 elements" in str(caught.value)


def test_a_missing_node_with_indices_from_zero_becomes_a_list() -> None:
    result = overlay(BASE, {"hack/proxy/urls/0": "a", "hack/proxy/urls/1": "b"}, "hack")
    assert result["proxy"] == {"urls": ["a", "b"]}


def test_a_null_node_with_indices_from_zero_becomes_a_list() -> None:
    result = overlay(BASE, {"hack/empty/1/x": "b", "hack/empty/0": "a"}, "hack")
    assert result["empty"] == ["a", {"x": "b"}]


def test_a_null_node_with_other_segments_becomes_a_mapping() -> None:
    result = overlay(BASE, {"hack/empty/1": "b", "hack/empty/2": "c"}, "hack")
    assert result["empty"] == {"1": "b", "2": "c"}
    result = overlay(BASE, {"hack/empty/0": "a", "hack/empty/x": "b"}, "hack")
    assert result["empty"] == {"0": "a", "x": "b"}


def test_indices_on_an_existing_mapping_stay_mapping_keys() -> None:
    result = overlay({"m": {}}, {"hack/m/0": "a"}, "hack")
    assert result == {"m": {"0": "a"}}


def test_a_scalar_replaces_a_whole_subtree() -> None:
    result = overlay(BASE, {"hack/storage": "none"}, "hack")
    assert result["storage"] == "none"
    result = overlay(BASE, {"hack/notifications/endpoints": "null"}, "hack")
    assert result["notifications"] == {"endpoints": None}


def test_a_mapping_value_replaces_the_subtree_instead_of_merging() -> None:
    result = overlay(BASE, {"hack/storage/swift": "{username: other}"}, "hack")
    assert result["storage"]["swift"] == {"username": "other"}


def test_a_list_value_replaces_the_whole_list() -> None:
    result = overlay(BASE, {"hack/http/headers/X-Content-Type-Options": "[a, b, c]"}, "hack")
    assert result["http"]["headers"]["X-Content-Type-Options"] == ["a", "b", "c"]


def test_a_path_through_a_scalar_names_the_key_and_the_scalar_path() -> None:
    base = {"storage": {"swift": "disabled"}}
    with pytest.raises(MappingError) as caught:
        overlay(base, {"hack/storage/swift/password": "secret-value"}, "hack")
    message = str(caught.value)
    assert caught.value.key == "hack/storage/swift/password"
    assert "path goes through a scalar value in the base config at `storage.swift`" in message
    assert "secret-value" not in message
    assert "disabled" not in message


def test_a_path_through_a_top_level_scalar_document_is_rejected() -> None:
    with pytest.raises(MappingError) as caught:
        overlay("just text", {"hack/a": "1"}, "hack")
    assert caught.value.key == "hack/a"


def test_a_key_holding_a_value_and_keys_below_it_conflict_naming_both() -> None:
    entries = {"hack/http/addr/x": "1", "hack/http/addr": ":5000"}
    with pytest.raises(MappingError) as caught:
        overlay(BASE, entries, "hack")
    message = str(caught.value)
    assert "`hack/http/addr` conflicts with `hack/http/addr/x`" in message
    assert "delete one of them" in message
    assert ":5000" not in message


def test_keys_outside_the_directory_are_ignored() -> None:
    entries = {
        "other/http/addr": ":1",
        "hackers/http/addr": ":2",
        "/hack/http/addr": ":3",
        "hac": "x",
    }
    assert overlay(BASE, entries, "hack") == BASE


def test_the_directory_key_itself_is_ignored() -> None:
    assert overlay(BASE, {"hack": "{a: 1}", "hack/": "x"}, "hack") == BASE


def test_leading_slash_directories_overlay_only_their_keys() -> None:
    entries = {"/hack/http/addr": ":6000", "hack/http/addr": ":7000"}
    assert overlay(BASE, entries, "/hack")["http"]["addr"] == ":6000"
    assert overlay(BASE, entries, "hack/")["http"]["addr"] == ":7000"


def test_non_string_base_keys_are_named_by_their_text() -> None:
    base = {1: "one", False: "no", None: "nothing", 2.5: "half", "s": {2: "two"}}
    entries = {
        "hack/1": "uno",
        "hack/false": "non",
        "hack/null": "nada",
        "hack/2.5": "demi",
        "hack/s/2": "dos",
    }
    result = overlay(base, entries, "hack")
    assert same(result, {1: "uno", False: "non", None: "nada", 2.5: "demi", "s": {2: "dos"}})


def test_a_string_key_wins_over_a_non_string_key_with_the_same_text() -> None:
    result = overlay({1: "int", "1": "str"}, {"hack/1": "new"}, "hack")
    assert result == {1: "int", "1": "new"}


def test_new_keys_are_added_after_existing_ones_in_sorted_order() -> None:
    base = {"z": 1, "m": 2}
    entries = {"hack/b": "1", "hack/m": "9", "hack/a": "1", "hack/c/y": "1", "hack/c/x": "1"}
    result = overlay(base, entries, "hack")
    assert list(result) == ["z", "m", "a", "b", "c"]
    assert list(result["c"]) == ["x", "y"]
    assert result["m"] == 9


def test_overlay_does_not_depend_on_the_order_of_entries() -> None:
    entries = {
        "hack/list/2": "z",
        "hack/list/3": "w",
        "hack/new/b": "2",
        "hack/new/a": "1",
        "hack/made/1": "b",
        "hack/made/0": "a",
        "hack/storage/swift/password": "p",
    }
    expected = overlay(BASE, entries, "hack")
    rng = random.Random(7)
    for _ in range(20):
        items = list(entries.items())
        rng.shuffle(items)
        result = overlay(BASE, dict(items), "hack")
        assert result == expected
        assert list(result["new"]) == list(expected["new"])


def test_an_invalid_value_fails_the_overlay_naming_its_key() -> None:
    with pytest.raises(MappingError) as caught:
        overlay(BASE, {"hack/a": "ok", "hack/b": "{not: valid"}, "hack")
    assert caught.value.key == "hack/b"


def test_changing_an_aliased_node_changes_only_the_named_path() -> None:
    base = yaml.safe_load("a: &shared {p: 1}\nb: *shared\n")
    result = overlay(base, {"hack/a/p": "2"}, "hack")
    assert result == {"a": {"p": 2}, "b": {"p": 1}}


# --------------------------------------------------------------------------------------------
# Render
# --------------------------------------------------------------------------------------------


def test_render_without_entries_returns_the_base_text_unchanged() -> None:
    assert render(REGISTRY_CONFIG, {}, "hack") == REGISTRY_CONFIG.encode("utf-8")


def test_render_with_only_unrelated_keys_returns_the_base_text_unchanged() -> None:
    entries = {"other/http/addr": ":1", "hack": "x", "hack/": "y", "hackers/a": "b"}
    assert render(REGISTRY_CONFIG, entries, "hack") == REGISTRY_CONFIG.encode("utf-8")


def test_render_applies_the_keys_to_the_base() -> None:
    entries = {
        "hack/http/addr": ":6000",
        "hack/storage/swift/password": "p@ss: w*rd&!",
        "hack/http/headers/X-Frame-Options/0": "DENY",
    }
    output = render(REGISTRY_CONFIG, entries, "hack")
    document = yaml.safe_load(output)
    expected = yaml.safe_load(REGISTRY_CONFIG)
    expected["http"]["addr"] = ":6000"
    expected["http"]["headers"]["X-Frame-Options"] = ["DENY"]
    assert same(document, expected)
    assert output.startswith(b"version: 0.1\nlog:\n")  # base key order kept


def test_render_is_deterministic() -> None:
    entries = {f"hack/extra/k{i}": str(i) for i in range(30)}
    entries.update({"hack/http/addr": ":6000", "hack/list/0": "a", "hack/list/1": "b"})
    expected = render(REGISTRY_CONFIG, entries, "hack")
    rng = random.Random(11)
    for _ in range(10):
        items = list(entries.items())
        rng.shuffle(items)
        assert render(REGISTRY_CONFIG, dict(items), "hack") == expected


def test_render_does_not_fold_long_values() -> None:
    long_value = " ".join(["word"] * 200)
    output = render("a: 1\n", {"hack/long": long_value}, "hack")
    assert f"long: {long_value}\n".encode() in output


def test_render_writes_non_ascii_as_utf8() -> None:
    output = render("", {"hack/name": "café ☕"}, "hack")
    assert output == "name: café ☕\n".encode()


def test_render_writes_a_certificate_as_a_literal_block() -> None:
    output = render("", {"hack/tls/ca": PEM}, "hack")
    assert output.startswith(b"tls:\n  ca: |\n    -----BEGIN CERTIFICATE-----\n")
    assert yaml.safe_load(output) == {"tls": {"ca": PEM}}


def test_render_onto_an_empty_base() -> None:
    for base_text in ["", "\n", "# only a comment\n", "~\n"]:
        output = render(base_text, {"hack/a/b": "1"}, "hack")
        assert output == b"a:\n  b: 1\n"


def test_render_of_an_aliased_value_writes_no_anchors() -> None:
    output = render("", {"hack/m": "{a: &s {p: 1}, b: *s}"}, "hack")
    assert output == b"m:\n  a:\n    p: 1\n  b:\n    p: 1\n"


def test_render_of_an_aliased_base_writes_no_anchors() -> None:
    output = render("a: &s {p: 1}\nb: *s\n", {"hack/c": "1"}, "hack")
    assert b"&" not in output
    assert b"*" not in output


@pytest.mark.parametrize("base_text", ["- a\n- b\n", "just text\n", "5\n"])
def test_render_rejects_a_base_that_is_not_a_mapping(base_text: str) -> None:
    with pytest.raises(MappingError) as caught:
        render(base_text, {"hack/a": "1"}, "hack")
    assert "mapping" in str(caught.value)
    assert caught.value.key is None


def test_render_rejects_invalid_base_yaml_without_quoting_it() -> None:
    with pytest.raises(MappingError) as caught:
        render("password: [s3cr3t\n", {}, "hack")
    assert "base config is not valid YAML" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_render_reports_an_invalid_key_value() -> None:
    with pytest.raises(MappingError) as caught:
        render(REGISTRY_CONFIG, {"hack/http/addr": "[:5000"}, "hack")
    assert caught.value.key == "hack/http/addr"


# --------------------------------------------------------------------------------------------
# Reverse mapping and round trips
# --------------------------------------------------------------------------------------------


def test_flatten_turns_every_leaf_into_a_key() -> None:
    config = {
        "version": 0.1,
        "http": {"addr": ":5000", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "storage": {"swift": {"password": "5000", "accesskey": None, "insecure": False}},
        "endpoints": [{"name": "a", "timeout": "1s"}, "plain"],
    }
    assert flatten(config, "hack") == {
        "hack/version": "0.1",
        "hack/http/addr": ":5000",
        "hack/http/headers/X-Content-Type-Options/0": "nosniff",
        "hack/storage/swift/password": '"5000"',
        "hack/storage/swift/accesskey": "null",
        "hack/storage/swift/insecure": "false",
        "hack/endpoints/0/name": "a",
        "hack/endpoints/0/timeout": "1s",
        "hack/endpoints/1": "plain",
    }


@pytest.mark.parametrize("directory", ["hack", "hack/"])
def test_flatten_accepts_the_directory_with_or_without_slash(directory: str) -> None:
    assert flatten({"a": 1}, directory) == {"hack/a": "1"}
    assert flatten({"a": 1}, "/" + directory) == {"/hack/a": "1"}


def test_flatten_writes_empty_containers_as_flow_values() -> None:
    assert flatten({"a": {}, "b": [], "c": {"d": {}}}, "hack") == {
        "hack/a": "{}",
        "hack/b": "[]",
        "hack/c/d": "{}",
    }


@pytest.mark.parametrize(
    ("mapping", "text"),
    [
        ({"a/b": 1}, "{a/b: 1}"),
        ({"": 1, "x": 2}, "{? '' : 1, x: 2}"),
        ({1: "x"}, "{1: x}"),
        ({"0": "a", "1": "b"}, "{'0': a, '1': b}"),
        ({"0": {"deep": 1}}, "{'0': {deep: 1}}"),
    ],
)
def test_flatten_writes_a_mapping_that_keys_cannot_express_as_one_flow_value(
    mapping: dict[Any, Any], text: str
) -> None:
    assert flatten({"m": mapping}, "hack") == {"hack/m": text}


def test_flatten_keeps_index_like_keys_that_are_not_a_run_from_zero() -> None:
    assert flatten({"m": {"1": "a", "2": "b"}}, "hack") == {"hack/m/1": "a", "hack/m/2": "b"}


def test_flatten_writes_a_container_of_inexpressible_values_as_one_flow_value() -> None:
    config = {"m": {"limit": float("inf"), "other": 1}, "l": [datetime.date(2024, 1, 2)]}
    assert flatten(config, "hack") == {
        "hack/m": "{limit: .inf, other: 1}",
        "hack/l": "[2024-01-02]",
    }


def test_flatten_rejects_a_config_that_is_not_a_mapping() -> None:
    for config in [[1, 2], "text", None, 5]:
        with pytest.raises(MappingError):
            flatten(config, "hack")


@pytest.mark.parametrize("config", [{"a/b": 1}, {"": 1}, {1: "x"}, {"x": float("inf")}])
def test_flatten_rejects_top_level_keys_no_etcd_key_can_express(config: dict[Any, Any]) -> None:
    with pytest.raises(MappingError):
        flatten(config, "hack")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("? " + "a/" * 500_000 + "\n: 1\n", "`" + "a/" * 40 + "…`"),
        ("true: 1\n", "`true`"),
        ("~: 1\n", "`null`"),
        ("-.inf: 1\n", "`-.inf`"),
        ("? !!binary /w==\n: 1\n", "`(a !!binary value)`"),
        ("a\\b/c: 1\n", "`a\\\\b/c`"),
    ],
)
def test_a_refused_top_level_key_is_named_in_one_short_line_as_the_file_spells_it(
    text: str, shown: str
) -> None:
    with pytest.raises(MappingError) as raised:
        flatten_text(text, "hack")
    message = str(raised.value)
    assert f"top-level config key {shown} cannot be written" in message
    assert len(message) < 300 and "\n" not in message


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("a: !!binary AAAA\n", "`a` holds a binary value (!!binary) that"),
        ("a: !!set {x}\n", "`a` holds a set (!!set) that"),
        ("a: .nan\n", "`a` holds a non-finite number (.inf or .nan) that"),
        ("a: !!timestamp 2001-12-14\n", "`a` holds a timestamp that"),
        ("42\n", "at the top level, not a number;"),
        ("true\n", "at the top level, not a boolean;"),
        ("- x\n", "at the top level, not a list;"),
    ],
)
def test_a_refused_value_is_named_in_the_files_words(text: str, said: str) -> None:
    # YAML's words for what the operator wrote, not Python's ("holds a bytes", "not a int")
    with pytest.raises(MappingError) as raised:
        flatten_text(text, "hack")
    assert said in str(raised.value)


def test_flatten_text_reads_a_yaml_document() -> None:
    assert flatten_text("a:\n  b: [1]\n", "hack") == {"hack/a/b/0": "1"}
    assert flatten_text("", "hack") == {}
    assert flatten_text("# nothing\n", "hack") == {}
    with pytest.raises(MappingError):
        flatten_text("- a\n", "hack")
    with pytest.raises(MappingError):
        flatten_text("a: [\n", "hack")


def test_the_docker_registry_config_flattens_to_the_expected_keys() -> None:
    keys = flatten_text(REGISTRY_CONFIG, "hack/")
    assert keys["hack/version"] == "0.1"
    assert keys["hack/http/addr"] == ":5000"
    assert keys["hack/http/headers/X-Content-Type-Options/0"] == "nosniff"
    assert keys["hack/storage/swift/password"] == "p@ss: w*rd&!"
    assert keys["hack/storage/swift/chunksize"] == "5242880"
    assert keys["hack/storage/swift/secretkey"] == "0755"
    assert keys["hack/storage/swift/accesskey"] == "null"
    assert keys["hack/storage/swift/prefix"] == ""
    assert keys["hack/notifications/endpoints/0/ignore/actions/0"] == "pull"
    assert keys["hack/notifications/endpoints/1/headers"] == "{}"
    assert keys["hack/redis/password"] == '"true"'
    assert keys["hack/proxy/username"] == '"[username]"'
    assert keys["hack/health/storagedriver/enabled"] == "true"
    assert keys["hack/middleware/storage/0/options/awsregion"] == "us-east-1, use-east-2"


def test_the_docker_registry_config_round_trips() -> None:
    config = yaml.safe_load(REGISTRY_CONFIG)
    keys = flatten(config, "hack")
    assert same(overlay({}, keys, "hack"), config)
    assert same(yaml.safe_load(render("", keys, "hack")), config)
    # Writing the same keys over the shipped config changes nothing.
    assert same(yaml.safe_load(render(REGISTRY_CONFIG, keys, "hack")), config)


ROUND_TRIP_CONFIGS: list[dict[Any, Any]] = [
    {},
    {"a": None},
    {"a": {}, "b": [], "c": [[]], "d": [{}]},
    {"a": {"b": {"c": {"d": {"e": "deep"}}}}},
    {"list": [1, "1", 1.0, True, None, "", "true", "null"]},
    {"matrix": [[1, 2], [3, [4, [5]]]]},
    {"objects": [{"name": "a", "tags": ["x"]}, {"name": "b", "tags": []}]},
    {"idx": {"0": "a", "1": "b", "2": "c"}, "sparse": {"1": "a"}, "zero": {"0": 0}},
    {"weird keys": {"a b": 1, "ä": 2, "x.y": 3, "-": 4, "~": 5, "1.5": 6, "true": 7}},
    {"slash": {"a/b": {"c": 1}}, "empty": {"": None}, "ints": {1: 2, 3: [4]}},
    {"texts": ["p@ss: w*rd&!", ":5000", "0755", "5000", "{x", "[y", '"q"', "'q'", PEM]},
    {"multi": "a: 1\nb: 2", "listy": "- a\n- b", "ws": "  x  ", "nl": "\n"},
    {"floats": [0.1, -2.5, 1e20, 1e-7, 3.0, -0.0]},
    {"unicode": "emoji 😀 𝄞 \u2028 \x85 \ufeff \x00"},
    {"special": {"inf": float("inf"), "date": datetime.date(2020, 2, 29)}},
    {"bigint": 2**80, "neg": -(2**70)},
]


@pytest.mark.parametrize("config", ROUND_TRIP_CONFIGS)
def test_a_config_round_trips_through_its_keys(config: dict[Any, Any]) -> None:
    check_round_trip(config)


def test_seeded_random_configs_round_trip_through_their_keys() -> None:
    rng = random.Random(1337)
    for _ in range(400):
        config = {random_segment(rng): random_value(rng, depth=4) for _ in range(rng.randint(0, 6))}
        check_round_trip(config)


def check_round_trip(config: dict[Any, Any]) -> None:
    for directory in ("hack", "/svc/registry/"):
        keys = flatten(config, directory)
        assert all(isinstance(value, str) for value in keys.values())
        assert same(overlay({}, keys, directory), config), keys
        rendered = render("", keys, directory)
        if keys:
            assert same(yaml.safe_load(rendered), config), rendered
        else:  # nothing to apply: the (empty) base text comes back as it is
            assert config == {}
            assert rendered == b""
        # Stored as bytes in etcd and read back: the same document.
        as_bytes = {key: value.encode("utf-8") for key, value in keys.items()}
        assert same(overlay({}, as_bytes, directory), config)
        # Overlaying a config with its own keys is a no-op.
        assert same(overlay(config, keys, directory), config)


# --------------------------------------------------------------------------------------------
# Random documents
# --------------------------------------------------------------------------------------------

TRICKY_TEXTS = [
    "",
    " ",
    "5000",
    "-1",
    "1.5",
    "1e3",
    "true",
    "False",
    "null",
    "~",
    "yes",
    ":5000",
    "0755",
    "{a: 1}",
    "[x]",
    "{",
    "[",
    '"',
    "'",
    '"quoted"',
    "'single'",
    "p@ss: w*rd&!",
    "a: 1\nb: 2",
    "- a\n- b",
    "-\n",
    "key:\n",
    PEM,
    "line\n",
    "\nleading newline",
    "  indented\n  lines",
    "trailing space \nline",
    "tab\tin",
    "cr\rlf\r\n",
    "ü é ☕ 😀",
    "\x85\u2028\u2029\ufeff",
    "#comment",
    "& * ! | > % @ `",
    "\\",
    "back\\slash\nx: y",
]

KEY_ALPHABET = string.ascii_letters + string.digits + " -_.:~@ü"
TEXT_ALPHABET = string.printable + "ü☕😀\x85\u2028\xa0\x00\x1b"


def random_segment(rng: random.Random) -> str:
    return "".join(rng.choice(KEY_ALPHABET) for _ in range(rng.randint(1, 8)))


def random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(TRICKY_TEXTS)
    return "".join(rng.choice(TEXT_ALPHABET) for _ in range(rng.randint(0, 12)))


def random_scalar(rng: random.Random) -> Any:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randint(-(10**12), 10**12)
    if kind == 1:
        return rng.choice([0.1, -2.5, 1e20, 1.5e-7, -0.0, 3.0]) * rng.choice([1, 7, -1])
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return None
    return random_text(rng)


def random_key(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.04:
        return rng.choice(["", "a/b", "/", "x/"])
    if roll < 0.08:
        return rng.randint(0, 3)
    if roll < 0.14:
        return str(rng.randint(0, 2))
    return random_segment(rng)


def random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return random_scalar(rng)
    if roll < 0.7:
        return [random_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.75:  # a run of index-like keys, which would come back as a list
        return {str(i): random_value(rng, depth - 1) for i in range(rng.randint(1, 3))}
    return {random_key(rng): random_value(rng, depth - 1) for _ in range(rng.randint(0, 4))}
