"""Which backups a retention policy keeps: the newest N, then the newest of each of the last
D days, W ISO weeks and M months (per cluster), as restic's and borg's `--keep-*` options do;
and always the newest verified backup, so pruning can never leave only unchecked copies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from etcdadmin.core.backup.manifest import CatalogEntry


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    @property
    def empty(self) -> bool:
        return not (self.keep_last or self.keep_daily or self.keep_weekly or self.keep_monthly)


def _created(entry: CatalogEntry) -> datetime:
    return datetime.fromisoformat(entry.created.replace("Z", "+00:00"))


def _day(e: CatalogEntry) -> Any:
    return _created(e).date()


def _week(e: CatalogEntry) -> Any:
    return _created(e).isocalendar()[:2]


def _month(e: CatalogEntry) -> Any:
    moment = _created(e)
    return moment.year, moment.month


def kept(entries: Sequence[CatalogEntry], policy: RetentionPolicy) -> set[str]:
    """The ids `policy` keeps among `entries`."""
    keep: set[str] = set()
    clusters = {e.cluster_id for e in entries}
    for cluster in clusters:
        newest_first = sorted(
            (e for e in entries if e.cluster_id == cluster),
            key=lambda e: (e.created, e.revision, e.id),
            reverse=True,
        )
        keep.update(e.id for e in newest_first[: policy.keep_last])
        buckets: tuple[tuple[int, Callable[[CatalogEntry], Any]], ...] = (
            (policy.keep_daily, _day),
            (policy.keep_weekly, _week),
            (policy.keep_monthly, _month),
        )
        for count, bucket in buckets:
            seen: set[Any] = set()
            for e in newest_first:
                key = bucket(e)
                if key in seen:
                    continue
                if len(seen) >= count:
                    break
                seen.add(key)
                keep.add(e.id)
        verified = next((e for e in newest_first if e.verified_at), None)
        if verified is not None:
            keep.add(verified.id)
    return keep
