"""Case records (audit trail): every pair and profile verification leaves one; list with filters, detail, CSV
export, owner scoping (staff sees all), the retention command; a failed audit write never fails a verification."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from api_helpers import close_response, error_of, png, upload
from audit import services as audit_services
from audit.models import VerificationRecord

pytestmark = pytest.mark.django_db

VERIFY = reverse("api:verify")
RECORDS = reverse("api:record-list")
EXPORT = reverse("api:record-export")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_pair(api, a: int = 1, b: int = 2):
    response = api.post(VERIFY, {"reference": upload(png(a)), "questioned": upload(png(b))}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


def make_profile(api, name: str = "Ada Lovelace", seeds=(11, 12, 13)) -> int:
    pid = api.post(reverse("api:profile-list"), {"name": name}, format="json").json()["id"]
    response = api.post(reverse("api:reference-list", kwargs={"profile_id": pid}),
                        {"images": [upload(png(s)) for s in seeds]}, format="multipart")
    assert response.status_code == 201, response.content
    return pid


def verify_profile(api, pid: int, seed: int = 14):
    response = api.post(reverse("api:profile-verify", kwargs={"profile_id": pid}),
                        {"questioned": upload(png(seed))}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def staff_client(user_client):
    api, user = user_client("auditor")
    user.is_staff = True
    user.save()
    return api, user


# --- every verification leaves a record -------------------------------------------------------------

def test_anonymous_pair_verification_is_recorded(client):
    result = verify_pair(client, 1, 2)
    record = VerificationRecord.objects.get()
    assert record.kind == "pair"
    assert record.user is None and record.username == "anonymous"
    assert record.client_address == "127.0.0.1"
    assert record.questioned_sha256 == sha(png(2))
    assert record.reference_sha256 == [sha(png(1))]
    assert record.model_version == result["model_version"]
    assert record.score == pytest.approx(result["score"]) and record.score_method == "pairwise"
    assert record.threshold == pytest.approx(result["threshold"])
    assert record.decision == result["decision"]
    assert record.elapsed_ms == pytest.approx(result["elapsed_ms"])
    assert record.image_files == []  # only the sha256 unless SIGVER_AUDIT_STORE_IMAGES


def test_signed_in_pair_verification_names_the_user(user_client):
    api, user = user_client("alice")
    verify_pair(api)
    record = VerificationRecord.objects.get()
    assert record.user == user and record.username == "alice"


def test_profile_verification_is_recorded_with_the_profile_and_reference_hashes(user_client):
    api, user = user_client("alice")
    pid = make_profile(api, seeds=(11, 12, 13))
    result = verify_profile(api, pid, 14)
    record = VerificationRecord.objects.get()
    assert record.kind == "profile" and record.username == "alice"
    assert record.profile_id == pid and record.profile_name == "Ada Lovelace"
    assert record.questioned_sha256 == sha(png(14))
    assert record.reference_sha256 == [sha(png(s)) for s in (11, 12, 13)]
    assert record.score_method == result["score_method"]
    assert record.score == pytest.approx(result["score"])
    assert record.decision == result["decision"]
    assert [r["id"] for r in record.details["references"]] == [r["id"] for r in result["references"]]


def test_a_refused_verification_leaves_no_record(client):
    response = client.post(VERIFY, {"reference": upload(png(1))}, format="multipart")
    assert response.status_code == 400
    assert not VerificationRecord.objects.exists()


def test_a_failed_audit_write_never_fails_the_verification(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise DatabaseError("disk I/O error")

    monkeypatch.setattr(VerificationRecord.objects, "create", broken)
    with caplog.at_level(logging.ERROR, logger="audit.services"):
        result = verify_pair(client)
    assert result["decision"] in ("genuine", "inconclusive", "forged")
    assert [r.getMessage() for r in caplog.records if "could not write the case record" in r.getMessage()] == [
        "could not write the case record of a pair verification"]
    assert not VerificationRecord.objects.exists()


def test_images_are_kept_only_when_the_setting_says_so(client, settings):
    settings.SIGVER_AUDIT_STORE_IMAGES = True
    verify_pair(client, 3, 4)
    record = VerificationRecord.objects.get()
    stored = [Path(settings.MEDIA_ROOT) / name for name in record.image_files]
    assert [p.read_bytes() for p in stored] == [png(4), png(3)]  # questioned, reference


def test_each_upload_is_hashed_once_from_the_view_to_the_record(client, settings, monkeypatch):
    """The view wraps each upload once (bytes, name, format, sha256); the service writes the case record from that
    object: nothing hashes the bytes a second time, and the stored copies are those bytes."""
    import hashlib

    settings.SIGVER_AUDIT_STORE_IMAGES = True
    hashed: list[bytes] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(data=b"", *args, **kwargs):
        hashed.append(bytes(data))
        return real_sha256(data, *args, **kwargs)

    monkeypatch.setattr(hashlib, "sha256", counting_sha256)
    response = client.post(VERIFY, {"reference": upload(png(1)), "questioned": upload(png(2))}, format="multipart")
    assert response.status_code == 200, response.content
    assert hashed.count(png(1)) == 1 and hashed.count(png(2)) == 1
    record = VerificationRecord.objects.get()
    assert record.questioned_sha256 == sha(png(2)) and record.reference_sha256 == [sha(png(1))]
    assert [(Path(settings.MEDIA_ROOT) / n).read_bytes() for n in record.image_files] == [png(2), png(1)]


# --- list, detail, ownership ------------------------------------------------------------------------

def test_records_need_a_token(client):
    verify_pair(client)
    response = client.get(RECORDS)
    assert response.status_code == 401 and error_of(response)["code"] == "not_authenticated"
    assert client.get(EXPORT).status_code == 401


def test_a_clerk_sees_only_their_records_and_staff_sees_all(client, user_client, staff_client):
    alice, _ = user_client("alice")
    bob, _ = user_client("bob")
    staff, _ = staff_client
    verify_pair(alice)
    verify_pair(bob)
    verify_pair(client)  # anonymous
    alice_list = alice.get(RECORDS).json()
    assert alice_list["count"] == 1 and alice_list["results"][0]["user"] == "alice"
    assert {r["user"] for r in staff.get(RECORDS).json()["results"]} == {"alice", "bob", "anonymous"}
    alice_id = alice_list["results"][0]["id"]
    assert alice.get(reverse("api:record-detail", kwargs={"record_id": alice_id})).status_code == 200
    response = bob.get(reverse("api:record-detail", kwargs={"record_id": alice_id}))
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    assert staff.get(reverse("api:record-detail", kwargs={"record_id": alice_id})).json()["user"] == "alice"


def test_record_detail_fields(user_client):
    api, _ = user_client("alice")
    result = verify_pair(api, 5, 6)
    record = api.get(RECORDS).json()["results"][0]
    detail = api.get(reverse("api:record-detail", kwargs={"record_id": record["id"]})).json()
    assert detail == record
    assert detail["kind"] == "pair" and detail["profile"] is None
    assert detail["questioned_sha256"] == sha(png(6)) and detail["reference_sha256"] == [sha(png(5))]
    assert detail["score"] == pytest.approx(result["score"]) and detail["has_images"] is False
    assert detail["score_method"] == "pairwise" and not {"distance", "verdict", "similarity"} & set(detail)
    assert detail["decision"] in ("genuine", "inconclusive", "forged")


def test_a_record_names_its_files_and_the_decision_cuts_it_used(user_client):
    api, _ = user_client("alice")
    response = api.post(VERIFY, {"reference": upload(png(5), name="cheque-ref.png"),
                                 "questioned": upload(png(6), name="folder/cheque 7.png")}, format="multipart")
    result = response.json()
    detail = api.get(RECORDS).json()["results"][0]
    assert detail["questioned_name"] == "cheque 7.png" and detail["reference_names"] == ["cheque-ref.png"]
    cuts = result["decision_rates"]
    assert detail["decision_cuts"] == {"genuine_below": pytest.approx(cuts["genuine_below"]),
                                       "forged_above": pytest.approx(cuts["forged_above"])}
    assert detail["thumbnail_url"] is None  # no image kept: nothing to show
    pid = make_profile(api, seeds=(11, 12))
    verify_profile(api, pid, 14)
    profile_record = api.get(RECORDS, {"kind": "profile"}).json()["results"][0]
    reference_ids = [r["id"] for r in profile_record["details"]["references"]]
    assert profile_record["reference_names"] == [f"reference {i}" for i in reference_ids]
    assert profile_record["decision_cuts"]["genuine_below"] <= profile_record["decision_cuts"]["forged_above"]


def test_the_thumbnail_is_the_kept_questioned_image_for_its_owner_only(user_client, settings):
    settings.SIGVER_AUDIT_STORE_IMAGES = True
    alice, _ = user_client("alice")
    bob, _ = user_client("bob")
    verify_pair(alice, 3, 4)
    record = alice.get(RECORDS).json()["results"][0]
    assert record["thumbnail_url"] == reverse("api:record-thumbnail", kwargs={"record_id": record["id"]})
    response = alice.get(record["thumbnail_url"])
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == png(4)
    close_response(response)
    assert bob.get(record["thumbnail_url"]).status_code == 404


def test_a_record_without_kept_images_has_no_thumbnail(user_client):
    api, _ = user_client("alice")
    verify_pair(api)
    record_id = api.get(RECORDS).json()["results"][0]["id"]
    response = api.get(reverse("api:record-thumbnail", kwargs={"record_id": record_id}))
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"


def _age(record_id: int, days: float) -> None:
    VerificationRecord.objects.filter(pk=record_id).update(created=timezone.now() - timedelta(days=days))


def test_filters(user_client, staff_client):
    alice, _ = user_client("alice")
    staff, _ = staff_client
    pid = make_profile(alice)
    verify_pair(alice)
    verify_profile(alice, pid)
    old = VerificationRecord.objects.get(kind="pair").pk
    _age(old, 10)
    today = timezone.now().date()

    def ids(api, **params):
        response = api.get(RECORDS, params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    recent = VerificationRecord.objects.get(kind="profile").pk
    assert ids(alice, profile=pid) == [recent]
    assert ids(alice, kind="pair") == [old]
    assert ids(alice, date_from=str(today - timedelta(days=1))) == [recent]
    assert ids(alice, date_to=str(today - timedelta(days=5))) == [old]
    assert ids(alice, date_from=str(today), date_to=str(today)) == [recent]
    decision = VerificationRecord.objects.get(pk=recent).decision
    assert recent in ids(alice, decision=decision)
    other = next(d for d in ("genuine", "inconclusive", "forged") if d != decision)
    assert recent not in ids(alice, decision=other)
    assert set(ids(staff, user="alice")) == {old, recent}
    assert ids(staff, user="nobody") == []
    assert ids(alice, user="auditor") == []  # a clerk's filter never widens what they see


@pytest.mark.parametrize("params", [{"date_from": "yesterday"}, {"decision": "maybe"}, {"profile": "x"},
                                    {"user": ""}, {"decision": ""}, {"kind": "batch"},
                                    {"profile": str(2**63)}])
def test_bad_filters_are_json_400s(user_client, params):
    api, _ = user_client("alice")
    for url in (RECORDS, EXPORT):
        response = api.get(url, params)
        assert response.status_code == 400, (url, params)
        assert error_of(response)["code"] == "invalid"


@pytest.mark.parametrize("params", [{"date_to": "9999-12-31"}, {"date_from": "0001-01-01", "date_to": "9999-12-31"},
                                    {"date_from": "9999-12-31"}, {"date_to": "0001-01-01"}])
def test_the_calendar_s_first_and_last_days_are_filters_not_500s(user_client, params):
    """The day after 9999-12-31 does not exist: `date_to` on it overflowed (a 500 on SQLite and PostgreSQL);
    now it means no upper bound."""
    api, _ = user_client("alice")
    verify_pair(api)
    everything = "date_from" not in params or params["date_from"] == "0001-01-01"
    expected = 1 if everything and params.get("date_to") == "9999-12-31" else 0
    response = api.get(RECORDS, params)
    assert response.status_code == 200, response.content
    assert response.json()["count"] == expected
    export = api.get(EXPORT, params)
    assert export.status_code == 200
    assert len(b"".join(export.streaming_content).decode().splitlines()) == 1 + expected


def test_csv_export(user_client):
    api, _ = user_client("alice")
    pid = make_profile(api, name="=HYPERLINK(\"http://evil\")")
    verify_pair(api)
    verify_profile(api, pid)
    response = api.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="case-records-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2
    assert rows[0]["kind"] == "profile" and rows[1]["kind"] == "pair"  # newest first
    assert rows[0]["profile_name"].startswith("'=")  # a spreadsheet shows it, never runs it
    assert rows[1]["reference_sha256"] == sha(png(1)) and rows[1]["user"] == "alice"
    assert len(rows[0]["reference_sha256"].split(";")) == 3
    assert rows[1]["score_method"] == "pairwise" and float(rows[1]["score"]) >= 0
    assert not {"distance", "verdict", "similarity"} & set(rows[0])
    only_pairs = api.get(EXPORT, {"kind": "pair"})
    assert len(list(csv.DictReader(io.StringIO(b"".join(only_pairs.streaming_content).decode())))) == 1


# --- the export's own limits ---------------------------------------------------------------------

def _rates(settings, **overrides: str) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **overrides}}


def test_the_export_has_its_own_throttle_scope(user_client, settings):
    _rates(settings, export="2/min")
    alice, _ = user_client("alice")
    bob, _ = user_client("bob")
    for _ in range(2):
        assert b"".join(alice.get(EXPORT).streaming_content).startswith(b"id,created")
    response = alice.get(EXPORT)
    assert response.status_code == 429 and error_of(response)["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    assert alice.get(RECORDS).status_code == 200  # the list, and everything else, keeps its own budget
    assert bob.get(EXPORT).status_code == 200  # per clerk


def test_exports_beyond_the_concurrency_limit_are_503_while_health_answers(user_client, client, settings):
    settings.SIGVER_MAX_CONCURRENT_EXPORTS = 1
    alice, _ = user_client("alice")
    verify_pair(alice)
    running = alice.get(EXPORT)  # streaming: holds its slot until the response is closed
    assert running.status_code == 200
    busy = alice.get(EXPORT)
    assert busy.status_code == 503 and error_of(busy)["code"] == "server_busy"
    assert busy["Retry-After"] == "10" and error_of(busy)["details"]["retry_after"] == 10
    assert client.get(reverse("api:health")).status_code == 200
    assert alice.get(RECORDS).status_code == 200
    close_response(running)  # the WSGI server closes every response, read in full or cut off
    done = alice.get(EXPORT)
    assert done.status_code == 200
    assert len(b"".join(done.streaming_content).decode().splitlines()) == 2  # read in full: closed, slot back
    assert alice.get(EXPORT).status_code == 200
    settings.SIGVER_MAX_CONCURRENT_EXPORTS = 2
    first, second = alice.get(EXPORT), alice.get(EXPORT)
    assert (first.status_code, second.status_code, alice.get(EXPORT).status_code) == (200, 200, 503)
    close_response(first), close_response(second)


def test_a_refused_export_takes_no_slot(user_client, settings):
    settings.SIGVER_MAX_CONCURRENT_EXPORTS = 1
    alice, _ = user_client("alice")
    assert alice.get(EXPORT, {"decision": "maybe"}).status_code == 400
    assert APIClient().get(EXPORT).status_code == 401
    response = alice.get(EXPORT)
    assert response.status_code == 200
    response.close()


def test_index_lists_the_records(client):
    assert client.get("/api/").json()["links"]["records"]["href"].endswith("/api/records/")


# --- account deletion ------------------------------------------------------------------------------

KEPT = ["id", "created", "kind", "questioned_sha256", "reference_sha256", "model_version", "score", "score_method",
        "threshold", "decision", "genuine_below", "forged_above", "details", "elapsed_ms"]


@pytest.mark.parametrize("how", ["api", "orm"])
def test_a_deleted_account_s_records_stay_anonymised(client, user_client, staff_client, settings, how,
                                                     django_capture_on_commit_callbacks):
    """What a bank must keep stays (when, the inputs' hashes, the model, scores, decision); what named or showed
    the clerk and their customer goes (user, address, profile name, stored images), whichever way the account goes."""
    from django.contrib.auth import get_user_model

    settings.SIGVER_AUDIT_STORE_IMAGES = True
    alice, user = user_client("alice")
    pid = make_profile(alice, name="Customer Name")
    verify_pair(alice)
    verify_profile(alice, pid)
    verify_pair(client, 3, 4)  # an anonymous record, and one of another clerk, stay as they are
    bob, _ = user_client("bob")
    verify_pair(bob, 5, 6)
    mine = VerificationRecord.objects.filter(user=user)
    before = {r.pk: {f: getattr(r, f) for f in KEPT} for r in mine}
    others = {r.pk: (r.username, r.client_address, r.image_files) for r in VerificationRecord.objects.exclude(user=user)}
    files = [Path(settings.MEDIA_ROOT) / n for r in mine for n in r.image_files]
    assert len(before) == 2 and len(files) == 3 and all(f.is_file() for f in files)  # pair: 2, profile: 1

    with django_capture_on_commit_callbacks(execute=True):
        if how == "api":
            assert alice.delete(reverse("api:account")).status_code == 204
        else:
            get_user_model().objects.filter(username="alice").delete()

    for record in VerificationRecord.objects.filter(pk__in=before):
        assert {f: getattr(record, f) for f in KEPT} == before[record.pk]
        assert (record.user, record.username, record.client_address) == (None, "deleted user", "")
        assert (record.profile, record.profile_name, record.image_files) == (None, "", [])
        assert (record.questioned_name, record.reference_names) == ("", [])  # a file name may name the customer
    assert not any(f.exists() for f in files)
    assert {r.pk: (r.username, r.client_address, r.image_files)
            for r in VerificationRecord.objects.exclude(pk__in=before)} == others
    staff, _ = staff_client
    listed = staff.get(RECORDS, {"user": "deleted user"}).json()
    assert listed["count"] == 2 and all(r["client_address"] == "" and not r["has_images"] for r in listed["results"])


def test_the_index_says_what_account_deletion_keeps(client):
    text = client.get("/api/").json()["links"]["account"]["description"]
    assert "case records stay, anonymised" in text and "all its data" not in text


# --- retention -------------------------------------------------------------------------------------

def test_purge_command_deletes_records_older_than_the_retention_period(client, settings, capsys,
                                                                     django_capture_on_commit_callbacks):
    settings.SIGVER_AUDIT_STORE_IMAGES = True
    settings.SIGVER_AUDIT_RETENTION_DAYS = 30
    verify_pair(client, 1, 2)
    verify_pair(client, 3, 4)
    old, new = VerificationRecord.objects.order_by("id")
    _age(old.pk, 31)
    old_files = [Path(settings.MEDIA_ROOT) / n for n in old.image_files]
    assert all(p.is_file() for p in old_files)

    call_command("purge_records", "--dry-run")
    assert "1 case record(s) older than 30 days found" in capsys.readouterr().out
    assert VerificationRecord.objects.count() == 2

    with django_capture_on_commit_callbacks(execute=True):  # the files go after the commit
        call_command("purge_records")
    assert "1 case record(s) older than 30 days deleted" in capsys.readouterr().out
    assert list(VerificationRecord.objects.values_list("pk", flat=True)) == [new.pk]
    assert not any(p.exists() for p in old_files)
    assert all((Path(settings.MEDIA_ROOT) / n).is_file() for n in new.image_files)

    call_command("purge_records", "--older-than-days", "0")  # 0 keeps today's records
    assert list(VerificationRecord.objects.values_list("pk", flat=True)) == [new.pk]
    _age(new.pk, 1)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_records", "--older-than-days", "0")
    assert not VerificationRecord.objects.exists()
    assert not any((Path(settings.MEDIA_ROOT) / n).exists() for n in new.image_files)


@pytest.mark.parametrize("days", ["1000000", "99999999", str(10**30)])
def test_a_retention_longer_than_the_calendar_keeps_every_record(client, settings, capsys, days):
    """`now - timedelta(days=1000000)` overflowed (the command crashed); no record is that old."""
    verify_pair(client)
    _age(VerificationRecord.objects.get().pk, 365 * 200)
    call_command("purge_records", "--older-than-days", days)
    assert f"0 case record(s) older than {days} days deleted" in capsys.readouterr().out
    settings.SIGVER_AUDIT_RETENTION_DAYS = int(days)
    call_command("purge_records")
    assert VerificationRecord.objects.count() == 1


def test_the_retention_counts_whole_days_before_today():
    from datetime import date, datetime, timezone as tz

    cutoff = audit_services.retention_cutoff
    assert cutoff(0, today=date(2026, 3, 10)) == datetime(2026, 3, 10, tzinfo=tz.utc)
    assert cutoff(1, today=date(2026, 3, 10)) == datetime(2026, 3, 9, tzinfo=tz.utc)
    assert cutoff(3650, today=date(2026, 3, 10)) == datetime(2016, 3, 12, tzinfo=tz.utc)  # 3 leap days
    assert cutoff(10**6, today=date(2026, 3, 10)) is None
    with pytest.raises(ValueError):
        cutoff(-1)


def test_a_negative_retention_is_a_command_error():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="0 or more"):
        call_command("purge_records", "--older-than-days", "-1")


def test_the_csv_is_sent_in_chunks_of_many_lines(db):
    from audit.views import CSV_LINES_PER_CHUNK, csv_lines, csv_rows

    VerificationRecord.objects.bulk_create(
        VerificationRecord(kind="pair", questioned_sha256="a" * 64, model_version="m", score=0.5, threshold=0.5,
                           decision="genuine", elapsed_ms=1.0)
        for _ in range(CSV_LINES_PER_CHUNK + 10))
    records = VerificationRecord.objects.order_by("-created", "-pk")
    chunks = list(csv_rows(records))
    assert len(chunks) == 2  # the header and 510 lines: one full chunk and the rest
    assert "".join(chunks) == "".join(csv_lines(records))
    assert len(list(csv.reader(io.StringIO("".join(chunks))))) == 1 + CSV_LINES_PER_CHUNK + 10


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_score_and_its_method_to_their_names():
    """audit 0003: a v1 record's `distance` (the number) becomes `score`, its `score` (the method) `score_method`;
    `verdict` and `similarity` go."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("audit", "0002_record_names_and_cuts")], [("audit", "0003_score_names")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("audit", "VerificationRecord")
    pk = old.objects.create(kind="profile", questioned_sha256="a" * 64, model_version="m", distance=0.73,
                            threshold=0.5, similarity=0.2, score="normalized", verdict="forged",
                            decision="inconclusive", elapsed_ms=1.0).pk
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    new = executor.loader.project_state(after).apps.get_model("audit", "VerificationRecord")
    record = new.objects.get(pk=pk)
    assert (record.score, record.score_method, record.decision) == (0.73, "normalized", "inconclusive")
    assert not {"distance", "verdict", "similarity"} & {f.name for f in new._meta.get_fields()}
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
