"""The agents' status record: one definition for the agent that writes it and the readers."""

from __future__ import annotations

import json

import pytest

from etcdadmin.core.agents.record import RESULTS, StatusRecord


def test_a_record_written_by_the_agent_reads_back_equal():
    record = StatusRecord(agent_id="a1", directory="hack/", containers=("registry",))
    record = record.replace_fields(last_result="ok", applied_revision=42, seen_revision=43)
    raw = json.loads(record.to_json())
    assert raw["containers"] == ["registry"] and raw["applied_revision"] == 42
    assert StatusRecord.from_json(raw, "a1") == record


def test_the_agent_cannot_publish_a_field_the_record_does_not_define():
    with pytest.raises(TypeError):
        StatusRecord(agent_id="a1").replace_fields(last_reslut="ok")
    with pytest.raises(ValueError):
        StatusRecord(agent_id="a1").replace_fields(last_result="fine")


def test_a_record_of_another_version_keeps_unknown_fields_and_drops_wrong_types():
    raw = {"applied_revision": True, "seen_revision": "7", "gray_release": "r2", "etcd": "ok"}
    record = StatusRecord.from_json(raw, "a2")
    assert record.applied_revision is None and record.seen_revision is None
    assert record.etcd == "ok" and record.extra == {"gray_release": "r2"}
    assert json.loads(record.to_json())["gray_release"] == "r2"


def test_every_result_the_agent_can_report_is_named():
    assert {"starting", "ok", "render_failed", "rolled_back", "quarantined"} <= set(RESULTS)
