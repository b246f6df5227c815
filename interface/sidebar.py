"""What every page does first: the same page layout, the clerk's sign-in restored, the server's state in the sidebar.

Above `ui` and `session` (it uses both; neither imports it), so the two stay free of an import loop."""

from __future__ import annotations

from typing import Any

import streamlit as st

import api_client as api
import session
from ui import USERNAME_KEY, cached_health, md_text

# One page configuration for the home page (app.py) and for every page however it is opened: a deep link
# (/History) and a page run on its own get the same wide layout and title as the home page.
PAGE_CONFIG: dict[str, Any] = {"page_title": "Signature verification", "page_icon": "✍️", "layout": "wide"}


def sidebar_ui() -> dict[str, Any] | None:
    """Backend status and model version on every page; returns the health answer, or None when down.
    Also restores a clerk's sign-in after a page refresh and keeps the session cookie in step (session.py): here,
    because every page calls this first, also when a page runs on its own (the tests)."""
    st.set_page_config(**PAGE_CONFIG)
    session.restore()
    base = api.api_url()
    with st.sidebar:
        session.cookie_ui()
        st.markdown("#### Verification server")
        try:
            health = cached_health(base)
        except api.ApiError as exc:
            st.error("Not reachable: verification is unavailable until it is back.", icon=":material/error:")
            st.caption(f"{md_text(base)} · {md_text(exc.message)}")
            health = None
        else:
            ok = health.get("status") == "ok"
            loaded = health.get("model_loaded", True)
            if ok and loaded:
                st.success("Online", icon=":material/check_circle:")
            elif not loaded:
                st.warning("Online, but the model is not loaded: verification will fail.", icon=":material/warning:")
            else:
                st.warning(f"Degraded: {md_text(health.get('status'))}", icon=":material/warning:")
            if health.get("database") not in (None, "ok"):
                st.warning(f"Database: {md_text(health.get('database'))} (profiles unavailable)")
            st.caption(f"Model: {md_text(health.get('model_version', 'unknown'))}")
            st.caption(f"Server: {md_text(base)}")
        if st.session_state.get(USERNAME_KEY):
            st.caption(f"Signed in as **{md_text(st.session_state[USERNAME_KEY])}**")
        st.caption("Decision support only: a decision is not a forensic expert's opinion.")
    if health is None:
        st.error(
            f"The verification server at {md_text(base)} cannot be reached. Nothing can be verified until it is "
            "running again; please try later or contact your administrator.",
            icon=":material/cloud_off:",
        )
    return health
