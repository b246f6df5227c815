"""Verify: is the questioned signature written by the same person as the reference?"""

from __future__ import annotations

from typing import Any

import streamlit as st

import api_client as api
import sidebar
import ui

REQUEST = ui.PairRequest(
    key="verify", labels=("A signature known to be genuine", "The signature to check"), width=260,
    subheaders=("1. Reference signature", "2. Questioned signature"),
    helps=("PNG, JPEG, TIFF or BMP scan or photo of a known genuine signature.",
           "PNG, JPEG, TIFF or BMP scan or photo of the signature to check."),
    button="Verify", icon=":material/search:", waiting="Upload both signatures, then press **Verify**.",
    spinner="Comparing the two signatures…", failure="Verification failed",
)


def result_ui(result: dict[str, Any]) -> None:
    st.divider()
    ui.result_ui(result)
    previews = result.get("previews") or {}
    if previews:
        st.markdown("##### As the model sees them")
        st.caption("What the model compared: paper background removed, cropped to the ink and resized to the "
                   "model's input size (shown dark on white). If a signature is cut off or smudged here, rescan it.")
        a, b = st.columns(2)
        with a:
            ui.show_image(api.decode_data_url(previews.get("reference")), "Reference, preprocessed", width=330,
                          alt="The reference signature as the model saw it: background removed, cropped, resized")
        with b:
            ui.show_image(api.decode_data_url(previews.get("questioned")), "Questioned, preprocessed", width=330,
                          alt="The questioned signature as the model saw it: background removed, cropped, resized")
    with st.expander("How to read this result"):
        st.markdown(
            "- The model turns each signature into a numeric fingerprint and measures the **score**, the distance "
            "between them (smaller = more alike).\n"
            "- **Genuine** (green): the score is so small that at most 2 in 100 skilled forgeries of writers the model "
            "never saw score that low. **Forged** (red): so large that at most 2 in 100 of their genuine signatures "
            "do. **Inconclusive** (amber): in between, where genuine signatures and skilled forgeries overlap: refer "
            "it to a specialist.\n"
            "- One reference is weak evidence: most genuine signatures land in the amber zone. Enrol five to ten "
            "references of the person (**Profiles**) for a firmer answer.\n"
            "- The sentence under the decision gives the rate measured at this very score. The **Model** page lists "
            "the rates per dataset.\n"
            "- **Explain** shows which parts of the signatures drove the score."
        )


def main() -> None:
    sidebar.sidebar_ui()
    st.title("Verify a signature")
    st.markdown("Compare a **questioned** signature with a **reference** signature known to be genuine.")
    result = ui.pair_request_ui(REQUEST)
    if result is not None:
        result_ui(result)


if __name__ == "__main__":
    main()
