"""History: the case records of past verifications (who checked which signature, when, with which model and
answer): filter them, open one, export them as CSV. A clerk sees their own records; a staff account sees all."""

from __future__ import annotations

import datetime as dt
from typing import Any

import streamlit as st

import api_client as api
import session
import sidebar
import ui

PAGE_SIZE = 50
CSV_KEY = "history_csv"  # session_state: {"filters": ..., "data": bytes}
DECISIONS = ["all", "genuine", "inconclusive", "forged"]
KINDS = {"all": "all", "pair": "two images (Verify)", "profile": "against a profile"}
DECISION_LABELS = {"genuine": "✔ genuine", "inconclusive": "? inconclusive", "forged": "✘ forged"}
# The API keeps a verification made before signing in without a name (docs/api.md, Case records): it is in no
# clerk's list, only in a staff account's, so the page says so rather than claim that every check is listed.
UNLISTED = ("Only verifications made while signed in to this account are listed here: those made before signing "
            "in are kept without a name and appear in no clerk's list (an administrator can find them).")


def on_auth_error(exc: api.AuthError) -> None:
    session.sign_out(f"Your session has ended ({exc.message}). Please sign in again.", also=(CSV_KEY,))
    st.rerun()


def filters_ui(client: api.SigverClient) -> dict[str, Any]:
    c1, c2, c3, c4 = st.columns(4)
    today = dt.date.today()
    date_from = c1.date_input("From", value=today - dt.timedelta(days=30), max_value=today, key="history_from",
                              format="YYYY-MM-DD")
    date_to = c2.date_input("To", value=today, key="history_to", format="YYYY-MM-DD")
    decision = c3.selectbox("Decision", DECISIONS, key="history_decision",
                            format_func=lambda d: DECISION_LABELS.get(d, d))
    kind = c4.selectbox("Kind", list(KINDS), key="history_kind", format_func=KINDS.get)
    c5, c6 = st.columns(2)
    profiles = []
    with ui.api_errors("Could not load your profiles", on_auth_error):
        profiles = client.profiles()
    names = {p["id"]: p.get("name", f"#{p['id']}") for p in profiles}
    profile = c5.selectbox("Profile", [None, *names], key="history_profile",
                           format_func=lambda pid: "all" if pid is None else f"{names[pid]} (#{pid})")
    user = c6.text_input("Clerk (user name; staff accounts see everyone's records)", key="history_user").strip()
    return {"date_from": date_from or None, "date_to": date_to or None, "decision": decision, "kind": kind,
            "profile": profile, "user": user or None}


def row(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "record": record["id"],
        "when (UTC)": str(record.get("created", ""))[:19].replace("T", " "),
        "clerk": record.get("user"),
        "kind": KINDS.get(record.get("kind"), record.get("kind")),
        "profile": record.get("profile_name") or "",
        "decision": DECISION_LABELS.get(record.get("decision"), record.get("decision")),
        "score": round(ui.score_of(record), 4),
        "threshold": round(float(record.get("threshold", 0.0)), 4),
        "model": record.get("model_version"),
    }


def file_names(record: dict[str, Any], role: str) -> str:
    """The uploaded file names of a record (`questioned_name`, `reference_names`, or a single `reference_name`),
    "not recorded" where the record does not hold them (older records, an API without them)."""
    names = record.get(f"{role}_names", record.get(f"{role}_name"))
    if isinstance(names, str):
        names = [names]
    names = [str(n) for n in names or [] if n]
    return ", ".join(names) if names else "not recorded"


def record_cuts(record: dict[str, Any]) -> tuple[float, float] | None:
    """The cuts the record's answer was decided with (`decision_cuts`, or the rates kept in `details`); None on a
    record made before they were kept. Never its EER threshold: that is no cut, and was not what decided."""
    return ui.decision_cuts({"decision_rates": record.get("decision_cuts"), "details": record.get("details")})


def thumbnail_ui(client: api.SigverClient, record: dict[str, Any]) -> None:
    """The questioned image of the record, where the server keeps images (`thumbnail_url`); nothing otherwise."""
    if not record.get("thumbnail_url"):
        return
    with ui.api_errors("The image of this record is unavailable", on_auth_error):
        data = client.record_thumbnail(record["id"], record["thumbnail_url"])
        name = file_names(record, "questioned")
        ui.show_image(data, f"Questioned image · {name}", width=320,
                      alt=f"The questioned signature of case record {record['id']}")


def record_ui(client: api.SigverClient, record: dict[str, Any]) -> None:
    """One case record in full."""
    st.subheader(f"Case record #{record['id']}")
    decision = str(record.get("decision", ""))
    text = f"**Decision: {ui.md_text(DECISION_LABELS.get(decision, decision))}**"
    {"genuine": st.success, "forged": st.error}.get(decision, st.warning)(text)
    cuts = record_cuts(record)
    c1, c2, c3 = st.columns(3)
    c1.metric("Score", f"{ui.score_of(record):.4f}",
              help="What the decision judged: the pair's distance, or the score against a profile's references")
    c2.metric("Decision cuts", f"{cuts[0]:.4f} / {cuts[1]:.4f}" if cuts else "not recorded",
              help="The cuts this answer was decided with: at or below the first genuine, above the second forged, "
              "inconclusive in between. Records from before the cuts were kept do not hold them.")
    c3.metric("Equal-error threshold", f"{float(record.get('threshold', 0.0)):.4f}",
              help="A reference point between the two cuts, not an answer of its own.")
    who = record.get("user")
    if record.get("client_address"):
        who = f"{who} from {record['client_address']}"
    facts = [  # shown in a table of plain text: a name, a user or an address is never markdown or HTML here
        ("When (UTC)", str(record.get("created", "")).replace("T", " ")),
        ("Checked by", who),
        ("Kind", KINDS.get(record.get("kind"), record.get("kind"))),
        ("Profile", f"{record.get('profile_name')} (#{record.get('profile')})" if record.get("profile_name") else "–"),
        ("Model", record.get("model_version")),
        ("Score method", ui.score_method_of(record)),
        ("Answered in", f"{float(record.get('elapsed_ms', 0.0)):.0f} ms"),
        ("Questioned file", file_names(record, "questioned")),
        ("Reference files", file_names(record, "reference")),
        ("Questioned image sha256", record.get("questioned_sha256")),
        ("Reference image sha256", ", ".join(record.get("reference_sha256") or []) or "–"),
        ("Images kept", "yes" if record.get("has_images") else "no (only their sha256)"),
    ]
    st.dataframe([{"fact": k, "value": "" if v is None else str(v)} for k, v in facts], hide_index=True, width="stretch")
    thumbnail_ui(client, record)
    if record.get("details"):
        with st.expander("Details (per-reference distances, decision rates)"):
            st.json(record["details"], expanded=False)


def export_ui(client: api.SigverClient, filters: dict[str, Any]) -> None:
    stored = st.session_state.get(CSV_KEY)
    if st.button("Export these records as CSV", key="history_export_button", icon=":material/download:"):
        with st.spinner("Preparing the CSV…"), ui.api_errors("The export failed", on_auth_error):
            stored = {"filters": filters, "data": client.records_csv(**filters)}
            st.session_state[CSV_KEY] = stored
    if stored and stored["filters"] == filters:
        rows = max(0, stored["data"].count(b"\n") - 1)
        st.download_button(f"Download the CSV ({rows} record{'s' if rows != 1 else ''})", stored["data"],
                           file_name=f"case-records-{dt.date.today().isoformat()}.csv", mime="text/csv",
                           key="history_download_button", type="primary")


def history_ui() -> None:
    client = ui.client(session.token())
    session.account_ui(also=(CSV_KEY,))
    filters = filters_ui(client)
    if filters["date_from"] and filters["date_to"] and filters["date_from"] > filters["date_to"]:
        st.error("The start date is after the end date.")
        return
    with ui.api_errors("Could not load the case records", on_auth_error):
        count = client.records(page=1, page_size=1, **filters).get("count", 0)
        if not count:
            st.info("No case records match these filters. " + UNLISTED)
            return
        pages = -(-count // PAGE_SIZE)
        page = 1
        if pages > 1:
            page = int(st.number_input("Page", min_value=1, max_value=pages, value=1, key="history_page"))
        records = client.records(page=page, page_size=PAGE_SIZE, **filters).get("results", [])
        st.caption(f"{count} record{'s' if count != 1 else ''}, newest first"
                   + (f" · page {page} of {pages}" if pages > 1 else ""))
        st.dataframe([row(r) for r in records], hide_index=True, width="stretch")
        export_ui(client, filters)
        by_id = {r["id"]: r for r in records}
        chosen = st.selectbox("Open a record", [None, *by_id], key="history_record",
                              format_func=lambda i: "choose a record…" if i is None else
                              f"#{i} · {row(by_id[i])['when (UTC)']} · {row(by_id[i])['decision']}")
        if chosen is not None:
            record_ui(client, client.record(chosen))


def main() -> None:
    sidebar.sidebar_ui()
    st.title("History")
    st.markdown("Every verification is kept as a case record: who checked which signature, when, with which model, "
                "and what the answer was. " + UNLISTED)
    if session.token():
        history_ui()
    else:
        session.sign_in_ui("Sign in to see the case records of your verifications.")


if __name__ == "__main__":
    main()
