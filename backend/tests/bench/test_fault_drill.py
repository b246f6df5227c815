"""bench/fault_drill.py's arithmetic, without a server: status classes, rows against files, answered verifications
against case records, latency percentiles and the printed table."""

from __future__ import annotations

from collections import Counter

import pytest


@pytest.fixture(scope="module")
def drill(bench_script):
    return bench_script("fault_drill")


def test_statuses_are_counted_by_class_and_a_missing_answer_apart(drill):
    counts = drill.by_status_class(Counter({200: 5, 201: 2, 413: 3, 415: 1, 503: 2, 500: 1, 0: 4}))
    assert counts == {"2xx": 7, "3xx": 0, "4xx": 4, "5xx": 3, "no answer": 4}
    assert list(counts) == ["2xx", "3xx", "4xx", "5xx", "no answer"]
    assert drill.by_status_class(Counter()) == {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "no answer": 0}


def test_rows_and_files_that_match_leave_nothing_over(drill):
    stored = {"references/1/a.png": 0o640, "audit/2026/01/q.png": 0o640, "audit/2026/01/r.png": 0o640}
    out = drill.rows_vs_files({"references/1/a.png"}, {"audit/2026/01/q.png", "audit/2026/01/r.png"}, stored)
    assert out["rows_without_files"] == [] and out["files_without_rows"] == []
    assert out["temporary_files"] == [] and out["modes_not_0640"] == [] and out["other_files"] == []
    assert (out["reference_rows"], out["reference_files"], out["record_images"], out["audit_files"]) == (1, 1, 2, 2)


def test_rows_without_files_files_without_rows_and_temporaries_are_told_apart(drill):
    stored = {
        "references/1/a.png": 0o640,
        "references/1/orphan.png": 0o640,  # a killed worker's file: no row
        "references/1/.b.png.123.tmp": 0o640,  # the atomic storage's temporary, never a row's
        "audit/2026/01/q.png": 0o644,  # named by a record, but readable by others
        "elsewhere.txt": 0o640,
    }
    out = drill.rows_vs_files({"references/1/a.png", "references/1/gone.png"},
                              {"audit/2026/01/q.png", "audit/2026/01/lost.png"}, stored)
    assert out["rows_without_files"] == ["audit/2026/01/lost.png", "references/1/gone.png"]
    assert out["files_without_rows"] == ["references/1/orphan.png"]
    assert out["temporary_files"] == ["references/1/.b.png.123.tmp"]
    assert out["other_files"] == ["elsewhere.txt"]
    assert out["modes_not_0640"] == ["audit/2026/01/q.png"]


def test_a_reference_file_is_not_taken_for_a_case_record_image(drill):
    """The same relative name under the other folder is not a match: each kind of row names its own folder."""
    out = drill.rows_vs_files({"references/x.png"}, set(), {"audit/x.png": 0o640})
    assert out["rows_without_files"] == ["references/x.png"] and out["files_without_rows"] == ["audit/x.png"]


def test_answered_verifications_are_checked_against_records_per_kind(drill):
    same = drill.records_check(Counter({"pair": 10, "profile": 4}), Counter({"pair": 10, "profile": 4}))
    assert same["ok"] and (same["answered"], same["recorded"]) == (14, 14)
    # equal totals, but a pair verification's record counted as a profile one: not ok
    swapped = drill.records_check(Counter({"pair": 10, "profile": 4}), Counter({"pair": 9, "profile": 5}))
    assert not swapped["ok"] and swapped["by_kind"]["pair"] == {"answered": 10, "recorded": 9}
    missing = drill.records_check(Counter({"pair": 3}), Counter())
    assert not missing["ok"] and missing["recorded"] == 0


def test_latency_percentiles_in_milliseconds(drill):
    seconds = [i / 1000 for i in range(1, 101)]  # 1 .. 100 ms
    out = drill.latency_summary(seconds)
    assert out["n"] == 100 and out["max"] == pytest.approx(100.0)
    assert out["p50"] == pytest.approx(50.5) and out["p95"] == pytest.approx(95.05)
    assert drill.latency_summary([0.02])["p95"] == pytest.approx(20.0)
    empty = drill.latency_summary([])
    assert empty["n"] == 0 and empty["p95"] != empty["p95"]  # NaN: no sample is no figure


def test_the_table_marks_missed_targets(drill):
    text = drill.table([("5xx", "0", "0", True), ("health p95", "140 ms", "<= 100 ms", False), ("sent", "12", "", None)])
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "measured", "target"] and set(lines[1]) <= {"-", " "}
    assert lines[2].endswith("ok") and lines[3].endswith("MISSED") and lines[4].split() == ["sent", "12"]
