"""Profiles: enrol a person's genuine signatures once, then check questioned signatures against all of them."""

from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

import api_client as api
import session
import sidebar
import ui

THUMBS_KEY = "reference_thumbnails"  # session_state: {(base_url, profile_id, ref_id): png bytes}
PROFILE_KEY = "profile_id"
PROFILE_RESULT_KEY = "profile_verify_result"
UPLOAD_ROUND_KEY = "reference_upload_round"
QUESTIONED_CROP_KEY = "profile_questioned_c"  # the questioned signature's crop step (`<key>_crop_on`, ...)
QUESTIONED_SUGGESTION_KEY = "profile_questioned_suggestion"  # a refused page's suggested crop, for these files
REFERENCE_SUGGESTION_KEY = "reference_suggestion"


# --------------------------------------------------------------------------------------------
# session (one login per clerk, kept across a page refresh: session.py)

PAGE_KEYS = (PROFILE_KEY, PROFILE_RESULT_KEY, THUMBS_KEY)  # forgotten on sign-out


def token() -> str | None:
    return session.token()


def sign_out(notice: str | None = None) -> None:
    session.sign_out(notice, also=PAGE_KEYS)


def on_auth_error(exc: api.AuthError) -> None:
    """Token expired or revoked: back to the sign-in form with a clear message."""
    sign_out(f"Your session has ended ({exc.message}). Please sign in again.")
    st.rerun()


def sign_in_ui() -> None:
    session.sign_in_ui()


# --------------------------------------------------------------------------------------------
# profiles


def name_key(name: Any) -> str:
    """Names that a clerk would read as the same person's: case and spacing aside."""
    return " ".join(str(name or "").split()).casefold()


def same_name(profiles: Sequence[dict[str, Any]], name: Any, but: Any = None) -> list[dict[str, Any]]:
    """The profiles (other than `but`, an id) whose name reads the same as `name`."""
    return [p for p in profiles if p.get("id") != but and name_key(p.get("name")) == name_key(name)]


def profile_label(p: dict[str, Any], profiles: Sequence[dict[str, Any]] = ()) -> str:
    """Name, customer number and reference count; a profile that shares its name with another also shows its id,
    so the two can be told apart in the selector."""
    ext = f" ({p['external_id']})" if p.get("external_id") else ""
    twin = f" · #{p.get('id')}" if same_name(list(profiles), p.get("name"), but=p.get("id")) else ""
    n = int(p.get("reference_count") or 0)
    return f"{p.get('name', '?')}{ext}{twin} · {n} reference{'s' if n != 1 else ''}"


SAME_NAME_ADVICE = ("Two profiles with one name are easily mixed up when verifying: give each its customer or account "
                    "number, or delete the one created by mistake.")


def create_profile_ui(client: api.SigverClient, profiles: list[dict[str, Any]]) -> None:
    with st.expander("New profile", icon=":material/person_add:", expanded=False):
        with st.form("new_profile_form", clear_on_submit=True):
            name = st.text_input("Name of the person", key="new_profile_name")
            external_id = st.text_input("Customer or account number (optional)", key="new_profile_external_id")
            submitted = st.form_submit_button("Create profile", type="primary")
        if submitted:
            if not name.strip():
                st.error("Enter the person's name.")
            else:
                with ui.api_errors("The profile could not be created", on_auth_error):
                    twins = same_name(profiles, name)
                    profile = client.create_profile(name.strip(), external_id.strip() or None)
                    st.session_state[PROFILE_KEY] = profile["id"]
                    ui.flash(f"Profile **{ui.md_text(profile['name'])}** created. Now add a few genuine signatures.")
                    if twins:
                        ui.flash(f"You now have {len(twins) + 1} profiles named **{ui.md_text(profile['name'])}**. "
                                 + SAME_NAME_ADVICE, "warning")
                    st.rerun()


def choose_profile_ui(profiles: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not profiles:
        st.info("No profiles yet. Create one for each person whose signature you want to check.")
        return None
    by_id = {p["id"]: p for p in profiles}
    labels = {i: profile_label(p, profiles) for i, p in by_id.items()}
    ids = list(by_id)
    if st.session_state.get(PROFILE_KEY) not in by_id:
        st.session_state[PROFILE_KEY] = ids[0]
    # The labels are part of the widget's key: the browser keeps showing the label a keyed selectbox had when only
    # its labels change, so "0 references" stayed after an upload. A new key draws the new labels; the choice itself
    # lives in PROFILE_KEY.
    pid = st.selectbox("Profile", ids, index=ids.index(st.session_state[PROFILE_KEY]), format_func=labels.get,
                       key=f"profile_select_{ui.digest(*(labels[i].encode() for i in ids))}")
    st.session_state[PROFILE_KEY] = pid
    twins = same_name(profiles, by_id[pid].get("name"), but=pid)
    if twins:
        others = ", ".join(f"#{p.get('id')}" + (f" ({ui.md_text(p['external_id'])})" if p.get("external_id") else "")
                           for p in twins)
        st.warning(f"Another profile has the same name: {others}. Check the customer number and the references "
                   f"before verifying against #{pid}. " + SAME_NAME_ADVICE, icon=":material/group:")
    return by_id[pid]


def reference_thumbnail(client: api.SigverClient, pid: Any, ref: dict[str, Any]) -> bytes | None:
    """Stored images need the token: fetched once per session, kept as small PNGs in session_state."""
    cache = st.session_state.setdefault(THUMBS_KEY, {})
    key = (client.base_url, pid, ref["id"])
    if key not in cache:
        cache[key] = ui.thumbnail_png(client.reference_image(pid, ref["id"], ref.get("image_url")), max_side=400)
    return cache[key]


def references_ui(client: api.SigverClient, profile: dict[str, Any]) -> list[dict[str, Any]]:
    pid = profile["id"]
    listing = client.reference_listing(pid)
    refs = list(listing.get("results", []))
    guidance = listing.get("guidance") or {}
    st.markdown(f"**{len(refs)} genuine reference signature{'s' if len(refs) != 1 else ''} on file.**")
    if guidance.get("message"):
        (st.caption if guidance.get("enough") else st.info)(ui.md_text(str(guidance["message"]).capitalize()))
    outliers = [r for r in refs if r.get("outlier")]
    if outliers:
        names = ", ".join(f"reference {r['id']}" for r in outliers)
        one = len(outliers) == 1
        st.warning(
            f"{names.capitalize()} {'does' if one else 'do'} not match the other references.\n\n"
            f"**What it means.** Compared with the other references of this profile, {'it' if one else 'each'} "
            "scores where forgeries score: the model would decide it forged. Every reference is part of every "
            "answer for this profile, so one that does not belong makes genuine signatures look less alike and "
            "widens what is accepted.\n\n"
            "**What to do.** Look at it beside the others below.\n"
            "- Someone else's signature, or a file enrolled by mistake: delete it.\n"
            "- A poor scan (cut off, smudged, shadow or a ruled line through it) or a page rather than a signature: "
            "delete it and enrol a clean, cropped scan of the same signature.\n"
            "- This person's, but a different style (initials, an older signature): keep it only if questioned "
            "signatures may be in that style too; better, enrol that style in a profile of its own.\n"
            "- It looks right to you: keep it, and add more references so that the profile shows the person's "
            "real range.",
            icon=":material/report:")
    per_row = 4
    for start in range(0, len(refs), per_row):
        cols = st.columns(per_row)
        for col, ref in zip(cols, refs[start:start + per_row]):
            with col:
                png = None
                with ui.api_errors("Thumbnail unavailable", on_auth_error):
                    png = reference_thumbnail(client, pid, ref)
                label = f"Reference {ref['id']}" + (" ⚠ does not match the others" if ref.get("outlier") else "")
                if png:
                    st.image(png, caption=label, width="stretch",
                             alt=ui.alt_text(f"Genuine reference signature {label.removeprefix('Reference ')}"))
                else:
                    st.caption(f"{label}: no preview")
                if st.button("Delete", key=f"delete_reference_{ref['id']}", icon=":material/delete:"):
                    with ui.api_errors("The reference could not be deleted", on_auth_error):
                        client.delete_reference(pid, ref["id"])
                        st.session_state.pop(PROFILE_RESULT_KEY, None)
                        ui.flash(f"Reference {ref['id']} deleted.")
                        st.rerun()
    round_ = st.session_state.setdefault(UPLOAD_ROUND_KEY, 0)
    files = st.file_uploader(
        "Add genuine signatures of this person", type=api.IMAGE_TYPES, accept_multiple_files=True,
        key=f"reference_upload_{round_}", max_upload_size=ui.upload_limit_mb(),
    )
    uploads = [{"name": f.name, "data": f.getvalue()} for f in files]
    crops = [reference_crop_ui(upload, round_, i) for i, upload in enumerate(uploads)]
    request_key = (pid, ui.digest(*(u["data"] for u in uploads)), str(crops))
    if st.button(f"Add {len(files)} reference{'s' if len(files) != 1 else ''}" if files else "Add references",
                 disabled=not files, key="add_references_button", icon=":material/upload:"):
        with st.spinner("Uploading and enrolling…"), ui.api_errors("The references could not be added", on_auth_error):
            try:
                created = client.add_references(pid, [(u["name"], u["data"]) for u in uploads], crops=crops)
            except api.ApiError as exc:
                ui.remember_suggestion(REFERENCE_SUGGESTION_KEY, request_key, exc)
                raise
            st.session_state.pop(REFERENCE_SUGGESTION_KEY, None)
            st.session_state[UPLOAD_ROUND_KEY] = round_ + 1  # a fresh, empty uploader
            st.session_state.pop(PROFILE_RESULT_KEY, None)
            ui.flash(f"{len(created)} reference{'s' if len(created) != 1 else ''} added.")
            st.rerun()
    ui.suggestion_ui(REFERENCE_SUGGESTION_KEY, request_key, {  # the API names the refused file images[<i>]
        f"images[{i}]": (f"{reference_crop_key(round_, i, u)}_crop_on", reference_crop_key(round_, i, u), u["data"],
                         f"{ui.md_text(u['name'])}") for i, u in enumerate(uploads)})
    return refs


def reference_crop_key(round_: int, i: int, upload: dict[str, Any]) -> str:
    """The crop step's widget keys and state name for the i-th file chosen (its digest too: a file removed from the
    list does not hand its box to the next one)."""
    return f"reference_{round_}_{i}_{ui.digest(upload['data'])[:8]}"


def reference_crop_ui(upload: dict[str, Any], round_: int, i: int) -> tuple[int, int, int, int] | None:
    """Each reference chosen gets the crop step of Verify (the box starts on the located signature); its box is
    sent with the file (`crops`)."""
    return ui.crop_ui(upload, reference_crop_key(round_, i, upload),
                      label=f"Crop {ui.md_text(upload['name'])} to the signature")  # a label is markdown


def verify_against_profile_ui(client: api.SigverClient, profile: dict[str, Any], refs: list[dict[str, Any]]) -> None:
    pid = profile["id"]
    st.markdown(f"Score a questioned signature against all references of **{ui.md_text(profile.get('name'))}**.")
    questioned = st.file_uploader("Questioned signature", type=api.IMAGE_TYPES, key="profile_questioned",
                                  max_upload_size=ui.upload_limit_mb())
    crop = None
    if questioned is not None:
        upload = {"name": questioned.name, "data": questioned.getvalue()}
        crop = ui.crop_ui(upload, QUESTIONED_CROP_KEY)
        if crop is None:
            ui.show_image(upload["data"], f"Questioned · {questioned.name}", width=360)
    if not refs:
        st.info("Add at least one reference signature first.")
    ready = questioned is not None and bool(refs)
    request_key = (pid, ui.digest(questioned.getvalue()) if questioned is not None else "", str(crop))
    if st.button("Verify against the profile", type="primary", disabled=not ready, key="profile_verify_button", icon=":material/search:"):
        with st.spinner("Comparing with every reference…"), ui.api_errors("Verification failed", on_auth_error):
            try:
                result = client.verify_profile(pid, (questioned.name, questioned.getvalue()), crop=crop)
            except api.ApiError as exc:
                ui.remember_suggestion(QUESTIONED_SUGGESTION_KEY, request_key, exc)
                raise
            st.session_state.pop(QUESTIONED_SUGGESTION_KEY, None)
            st.session_state[PROFILE_RESULT_KEY] = {"key": request_key, "result": result}
    if questioned is not None:
        ui.suggestion_ui(QUESTIONED_SUGGESTION_KEY, request_key, {"questioned": (
            f"{QUESTIONED_CROP_KEY}_crop_on", QUESTIONED_CROP_KEY, questioned.getvalue(), "the questioned image")})
    stored = st.session_state.get(PROFILE_RESULT_KEY)
    if ready and stored and stored["key"] == request_key:
        result = stored["result"]
        ui.result_ui(result, subject="this person's references")
        evidence_ui(client, pid, questioned.getvalue(), result, refs)


def evidence_ui(client: api.SigverClient, pid: Any, questioned: bytes, result: dict[str, Any],
                refs: list[dict[str, Any]]) -> None:
    """The questioned signature beside the references it was scored against, closest first, each with its distance."""
    by_id = {r["id"]: r for r in refs}
    compared = sorted(result.get("references", []), key=lambda r: float(r.get("distance", 0.0)))
    if not compared:
        return
    st.markdown(f"##### Score against this person's references\n{score_explanation(result, len(compared))}.")
    copy_of = result.get("copy_of_reference")
    left, right = st.columns([1, 3])
    with left:
        ui.show_image(questioned, "Questioned", width=220)
    with right:
        per_row = 4
        for start in range(0, len(compared), per_row):
            cols = st.columns(per_row)
            for col, r in zip(cols, compared[start:start + per_row]):
                with col:
                    ref = by_id.get(r.get("id"))
                    caption = f"Reference {r.get('id')} · distance {float(r.get('distance', 0.0)):.3f}"
                    if r.get("id") == copy_of:
                        caption += " · the same image"
                    png = None
                    if ref is not None:
                        with ui.api_errors("Thumbnail unavailable", on_auth_error):
                            png = reference_thumbnail(client, pid, ref)
                    if png:
                        st.image(png, caption=caption, width="stretch", alt=ui.alt_text(f"{caption} (signature)"))
                    else:
                        st.caption(caption)
    st.caption("Closest first. The score is not any single distance: " + (
        "it is their mean divided by how far the references lie from each other." if ui.score_method_of(result) == "normalized"
        else "with one reference it is that distance; with several, their mean."))


def score_explanation(result: dict[str, Any], n_rows: int) -> str:
    """One sentence on how the score was computed from the per-reference distances."""
    count = result.get("reference_count", n_rows)
    score = ui.score_of(result)
    kind = ui.score_method_of(result)
    if kind == "normalized":
        mean = float(result.get("mean_distance", 0.0))
        spread = result.get("reference_spread")
        spread_text = f"{float(spread):.3f}" if spread is not None else "n/a"
        return (f"the mean distance to the {count} references, {mean:.3f}, divided by how far they lie from each "
                f"other, {spread_text}, gives the score {score:.3f}: a variable signer is allowed more distance than "
                "a consistent one")
    if kind == "pairwise":
        return f"a single reference: the score is its distance, {score:.3f}"
    return f"the score is the mean distance to the {count} references, {score:.3f}"


def danger_zone_ui(client: api.SigverClient, profile: dict[str, Any]) -> None:
    with st.expander("Delete this profile"):
        st.write("Deletes the profile and all its reference signatures. This cannot be undone.")
        sure = st.checkbox(f"Yes, delete {ui.md_text(profile.get('name'))}", key=f"confirm_delete_profile_{profile['id']}")
        if st.button("Delete profile", disabled=not sure, key="delete_profile_button", icon=":material/delete:"):
            with ui.api_errors("The profile could not be deleted", on_auth_error):
                client.delete_profile(profile["id"])
                st.session_state.pop(PROFILE_KEY, None)
                st.session_state.pop(PROFILE_RESULT_KEY, None)
                ui.flash(f"Profile {ui.md_text(profile.get('name'))} deleted.")
                st.rerun()


def account_ui(client: api.SigverClient) -> None:
    session.account_ui(also=PAGE_KEYS)


def delete_account_ui(client: api.SigverClient) -> None:
    with st.expander("Delete my account"):
        st.write("Deletes your account, every profile and every stored signature image. The case records of your "
                 "verifications stay for the bank, anonymised: the decision, scores, image fingerprints and time, "
                 "without your name, your address, the profile's name or the images.")
        sure = st.checkbox("Yes, delete my account, my profiles and their images", key="confirm_delete_account")
        if st.button("Delete account", disabled=not sure, key="delete_account_button"):
            with ui.api_errors("The account could not be deleted", on_auth_error):
                client.delete_account()
                sign_out("Your account, profiles and images were deleted; your case records stay, anonymised.")
                st.rerun()


def profiles_ui() -> None:
    client = ui.client(token())
    account_ui(client)
    ui.show_flash()
    with ui.api_errors("Could not load your profiles", on_auth_error):
        profiles = client.profiles()
        create_profile_ui(client, profiles)
        profile = choose_profile_ui(profiles)
        if profile is not None:
            references_tab, verify_tab = st.tabs(["Reference signatures", "Verify a signature"])
            with references_tab:
                refs = references_ui(client, profile)
            with verify_tab:
                verify_against_profile_ui(client, profile, refs)
            danger_zone_ui(client, profile)
        st.divider()
        delete_account_ui(client)


def main() -> None:
    sidebar.sidebar_ui()
    st.title("Signature profiles")
    if token():
        profiles_ui()
    else:
        sign_in_ui()


if __name__ == "__main__":
    main()
