"""One login per clerk that survives a page refresh, without the token in the URL or in the browser.

Signing in keeps the clerk's API token in this interface process only, under a random session id (256 bits); the
browser gets just that id, in the cookie `sigver_session` (SameSite=Strict, path /, expires with the session),
set through extra-streamlit-components' CookieManager. On a refresh Streamlit starts a new session: `restore()`
(called on every run by `sidebar.sidebar_ui`, which every page calls first) reads the cookie from the request
(`st.context.cookies`) and finds the token again. Signing out ends the token on the server (POST /api/auth/sign-out/)
and forgets the id here, so neither the token nor the cookie is worth anything from then on even if a copy is kept,
and deletes the cookie. Sessions end after SIGVER_UI_SESSION_HOURS (default 12) and when the interface restarts.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Iterable

import streamlit as st

import api_client as api
import ui

SESSION_COOKIE = "sigver_session"
SESSION_ID_KEY = "session_id"
SIGNED_OUT_KEY = "signed_out"  # this browser session signed out: do not restore from a cookie still on its way out
COOKIE_COMPONENT_KEY = "sigver_cookie_manager"


def session_hours() -> float:
    try:
        return max(0.01, float(os.environ.get("SIGVER_UI_SESSION_HOURS", "12")))
    except ValueError:
        return 12.0


@dataclass(frozen=True)
class Session:
    token: str
    username: str
    expires: float  # time.time()


class SessionStore:
    """Session id -> (token, username, expiry), shared by every browser session of this interface process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, token: str, username: str) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._sessions = {k: v for k, v in self._sessions.items() if v.expires > now}  # drop expired ones
            self._sessions[session_id] = Session(token, username, now + session_hours() * 3600)
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires <= time.time():
                del self._sessions[session_id]
                return None
            return session

    def drop(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)


@st.cache_resource
def session_store() -> SessionStore:
    return SessionStore()


# --------------------------------------------------------------------------------------------
# signing in and out


def token() -> str | None:
    return st.session_state.get(ui.TOKEN_KEY)


def sign_in(username: str, new_token: str) -> None:
    st.session_state[ui.TOKEN_KEY] = new_token
    st.session_state[ui.USERNAME_KEY] = username
    st.session_state[SESSION_ID_KEY] = session_store().create(new_token, username)
    st.session_state.pop(ui.AUTH_NOTICE_KEY, None)
    st.session_state.pop(SIGNED_OUT_KEY, None)


def server_sign_out() -> None:
    """The clerk's token ends on the server too (POST /api/auth/sign-out/), so a copy of it is worthless. Best
    effort: a server that cannot be reached, or a token that has already ended, still signs the clerk out here."""
    current = token()
    if not current:
        return
    try:
        ui.client(current).sign_out()
    except api.ApiError:
        pass


def sign_out(notice: str | None = None, also: Iterable[str] = ()) -> None:
    """Ends the session here (the cookie no longer leads anywhere) and in this browser session. (The sign-out
    button also ends the token on the server first: `server_sign_out`.)"""
    session_store().drop(st.session_state.get(SESSION_ID_KEY))
    for key in (ui.TOKEN_KEY, ui.USERNAME_KEY, SESSION_ID_KEY, *also):
        st.session_state.pop(key, None)
    st.session_state[SIGNED_OUT_KEY] = True
    if notice:
        st.session_state[ui.AUTH_NOTICE_KEY] = notice


def restore(cookies: dict[str, str] | None = None) -> bool:
    """After a page refresh: the signed-in clerk again, from the session cookie. True when restored."""
    if token() or st.session_state.get(SIGNED_OUT_KEY):
        return False
    cookies = dict(st.context.cookies) if cookies is None else cookies
    session_id = cookies.get(SESSION_COOKIE)
    session = session_store().get(session_id)
    if session is None:
        return False
    st.session_state[ui.TOKEN_KEY] = session.token
    st.session_state[ui.USERNAME_KEY] = session.username
    st.session_state[SESSION_ID_KEY] = session_id
    return True


def cookie_ui() -> None:
    """Keeps the browser's cookie in step with the session: set after signing in, deleted after signing out.
    (The CookieManager is an invisible component; `sidebar.sidebar_ui` renders it in the sidebar on every run.)"""
    import extra_streamlit_components as stx

    in_request = st.context.cookies.get(SESSION_COOKIE)
    session_id = st.session_state.get(SESSION_ID_KEY)
    if session_id and in_request != session_id:
        manager = stx.CookieManager(key=COOKIE_COMPONENT_KEY)
        expires = dt.datetime.now() + dt.timedelta(hours=session_hours())
        manager.set(SESSION_COOKIE, session_id, key=f"{COOKIE_COMPONENT_KEY}_set", expires_at=expires,
                    same_site="strict")
    elif not session_id and in_request:
        manager = stx.CookieManager(key=COOKIE_COMPONENT_KEY)
        try:
            manager.delete(SESSION_COOKIE, key=f"{COOKIE_COMPONENT_KEY}_delete")
        except KeyError:  # the component had not reported the browser's cookies yet: deleted all the same
            pass


# --------------------------------------------------------------------------------------------
# shared widgets


def sign_in_ui(purpose: str = "Sign in to manage the people whose signatures you keep on file.") -> None:
    notice = st.session_state.get(ui.AUTH_NOTICE_KEY)
    if notice:
        st.warning(notice, icon=":material/key:")
    st.markdown(purpose)
    sign_in_tab, register_tab = st.tabs(["Sign in", "Create an account"])
    with sign_in_tab:
        with st.form("sign_in_form"):
            username = st.text_input("Username", key="sign_in_username")
            password = st.text_input("Password", type="password", key="sign_in_password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if submitted:
            if not username or not password:
                st.error("Enter your username and password.")
            else:
                with ui.api_errors("Sign-in failed"):
                    sign_in(username, ui.client().login(username, password))
                    st.rerun()
    with register_tab:
        with st.form("register_form"):
            new_username = st.text_input("Username", key="register_username")
            email = st.text_input("E-mail (optional)", key="register_email")
            new_password = st.text_input("Password", type="password", key="register_password",
                                         help="At least 8 characters.")
            repeat = st.text_input("Repeat the password", type="password", key="register_password2")
            created = st.form_submit_button("Create account", type="primary")
        if created:
            if not new_username or not new_password:
                st.error("Choose a username and a password.")
            elif new_password != repeat:
                st.error("The two passwords differ.")
            else:
                with ui.api_errors("The account could not be created"):
                    account = ui.client().register(new_username, new_password, email or None)
                    sign_in(str(account.get("username", new_username)), str(account["token"]))
                    st.rerun()


def account_ui(also: Iterable[str] = ()) -> None:
    """"Signed in as …" and the sign-out button; `also`: the page's own session_state keys to forget."""
    left, right = st.columns([4, 1])
    left.markdown(f"Signed in as **{ui.md_text(st.session_state.get(ui.USERNAME_KEY, '?'))}**")
    if right.button("Sign out", key="sign_out_button", icon=":material/logout:"):
        server_sign_out()
        sign_out(also=also)
        st.rerun()
