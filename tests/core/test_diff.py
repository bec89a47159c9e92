"""The one value diff (etcdadmin.core.changes.diff), shown by the pending-changes panel for a
plan and by the history panel for a version against now."""

from __future__ import annotations

from etcdadmin.core.changes.changeset import Plan, PlannedStep
from etcdadmin.core.changes.diff import diff_text, value_diff, value_lines
from etcdadmin.core.etcd import KeyValue


def kv(key: bytes, value: bytes, revision: int = 7, lease: int = 0) -> KeyValue:
    return KeyValue(key, value, 2, revision, 3, lease)


def test_text_values_differ_line_by_line():
    text = value_diff(b"a: 1\nb: 2\n", b"a: 1\nb: 3\n", "revision 4", "current")
    assert text == "\n".join(
        ["--- revision 4", "+++ current", "@@ -1,3 +1,3 @@", " a: 1", "-b: 2", "+b: 3", " "]
    )


def test_binary_values_are_hex_lines_of_sixteen_bytes():
    value = bytes(range(20))
    assert value_lines(value) == [
        "hex 0000: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
        "hex 0010: 10 11 12 13",
    ]
    text = value_diff(value, value[:16] + b"\xff", "old", "new")
    assert "-hex 0010: 10 11 12 13" in text
    assert "+hex 0010: ff" in text
    assert " hex 0000: 00 01 02" in text


def test_an_absent_value_diffs_as_nothing_and_says_so_when_the_other_side_is_empty_too():
    assert value_diff(None, b"x", "k (absent)", "k (staged)").splitlines()[2:] == [
        "@@ -0,0 +1 @@",
        "+x",
    ]
    assert value_diff(b"bye", None, "revision 3", "current (absent)").splitlines()[-1] == "-bye"
    assert value_diff(None, b"", "a", "b").endswith("# empty value")
    assert value_diff(b"", None, "a", "b").endswith("# an empty value, deleted")
    assert value_diff(None, None, "a", "b").endswith("# absent on both sides")
    assert value_diff(b"same", b"same", "a", "b").endswith("# same value")


def test_crlf_values_are_shown_as_hex_so_the_carriage_returns_are_visible():
    crlf, lf = b"a: 1\r\nb: 2\r\n", b"a: 1\nb: 2\n"
    assert value_lines(crlf) == ["hex 0000: 61 3a 20 31 0d 0a 62 3a 20 32 0d 0a"]
    text = value_diff(crlf, lf, "revision 5", "current")
    assert "-hex 0000: 61 3a 20 31 0d 0a 62 3a 20 32 0d 0a" in text
    assert "+a: 1" in text


def test_the_pending_changes_diff_shows_a_binary_value_exactly_as_the_history_diff_does():
    old, new = bytes(range(40)), bytes(range(1, 41))
    plan = Plan(
        revision=9,
        steps=(PlannedStep(b"app/bin", kv(b"app/bin", old), new),),
        basis=((b"app/bin", kv(b"app/bin", old)),),
    )
    expected = value_diff(old, new, "app/bin (revision 7)", "app/bin (staged)")
    assert diff_text(plan) == expected + "\n"


def test_a_lease_change_is_noted_after_the_diff():
    plan = Plan(
        revision=9,
        steps=(PlannedStep(b"s", kv(b"s", b"v", lease=0), b"v", lease=0x2A),),
        basis=(),
    )
    assert diff_text(plan).splitlines()[-2:] == ["# same value", "# lease 0 -> 2a"]
