"""Records a consumer passed over and never delivered are reported once, after a while;
records delivered late, redeliveries and new assignments are not."""

from pipeline.offsetgaps import OffsetGaps


def test_a_range_never_delivered_is_reported_once_when_overdue() -> None:
    gaps = OffsetGaps(overdue_s=60)
    for o in (1557, 1558, 1559, 1721, 1722):
        gaps.check(1, 0, o, now=0.0)
    assert gaps.overdue(now=59.0) == []
    assert gaps.overdue(now=61.0) == [(0, 1560, 1720)]
    assert gaps.overdue(now=120.0) == []  # once


def test_a_range_delivered_late_is_not_reported() -> None:
    gaps = OffsetGaps(overdue_s=60)
    for o in (1726, 1911, 1912, *range(1727, 1911)):  # a takeover handing over two positions
        gaps.check(1, 0, o, now=0.0)
    assert gaps.overdue(now=100.0) == []


def test_what_is_still_missing_after_a_partial_fill_is_reported() -> None:
    gaps = OffsetGaps(overdue_s=60)
    for o in (10, 20, 12, 15):
        gaps.check(1, 0, o, now=0.0)
    assert gaps.overdue(now=60.0) == [(0, 11, 11), (0, 13, 14), (0, 16, 19)]


def test_redelivery_partitions_and_reassignment_are_not_gaps() -> None:
    gaps = OffsetGaps(overdue_s=0)
    for p, o in ((0, 10), (0, 5), (0, 11), (1, 500)):  # read again; another partition
        gaps.check(1, p, o, now=0.0)
    gaps.check(1, 0, 30, now=0.0)
    gaps.check(2, 0, 900, now=0.0)  # a new assignment forgets the old ranges
    assert gaps.overdue(now=1.0) == []
