"""Entry point: `streamlit run interface/app.py` (backend URL from SIGVER_API_URL).

The pages live in `app_pages/`, routed by `st.navigation` alone (deep links included: a folder named `pages/`
would make Streamlit run a deep-linked page without this file, with its own sidebar list); each page also runs on
its own (that is how the tests run them).
Verify is the landing page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from sidebar import PAGE_CONFIG

HERE = Path(__file__).resolve().parent

PAGES = [
    ("app_pages/1_Verify.py", "Verify", ":material/fact_check:"),
    ("app_pages/2_Explain.py", "Explain", ":material/insights:"),
    ("app_pages/3_Profiles.py", "Profiles", ":material/badge:"),
    ("app_pages/4_Datasets.py", "Datasets", ":material/photo_library:"),
    ("app_pages/5_Model.py", "Model", ":material/analytics:"),
    ("app_pages/6_History.py", "History", ":material/history:"),
]


def main() -> None:
    st.set_page_config(**PAGE_CONFIG)
    try:  # a clerk has no use for the "Deploy" button
        st.set_option("client.toolbarMode", "minimal")
    except Exception:  # noqa: BLE001 - not settable at runtime in some Streamlit versions: cosmetic only
        pass
    pages = [
        st.Page(str(HERE / path), title=title, icon=icon, default=(i == 0))
        for i, (path, title, icon) in enumerate(PAGES)
    ]
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
