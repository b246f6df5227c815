"""Explain: which parts of the two signatures drove the model's decision (occlusion heatmaps)."""

from __future__ import annotations

from typing import Any

import streamlit as st

import api_client as api
import sidebar
import ui

REQUEST = ui.PairRequest(
    key="explain", labels=("Reference signature (known genuine)", "Questioned signature"), width=320,
    button="Explain", icon=":material/insights:", explain=True,
    waiting="Upload a reference and a questioned signature (or use the Verify page first), then press **Explain**.",
    spinner="Computing the heatmaps… this takes a few seconds.", failure="Explanation failed",
)


def heatmaps_ui(result: dict[str, Any]) -> None:
    st.divider()
    ui.result_ui(result)
    explanation = result.get("explanation") or {}
    if not explanation:
        st.warning("The server returned no explanation for this pair (its version may not support `explain=true`).")
        return
    st.markdown("##### Where the model looked")
    a, b = st.columns(2)
    with a:
        ui.show_image(api.decode_data_url(explanation.get("reference")), "Reference: heatmap",
                      alt="The reference signature with a heatmap over it: red where hiding the strokes changed the "
                      "score most")
    with b:
        ui.show_image(api.decode_data_url(explanation.get("questioned")), "Questioned: heatmap",
                      alt="The questioned signature with a heatmap over it: red where hiding the strokes changed the "
                      "score most")
    if explanation.get("note"):
        st.caption(f"Server note ({ui.md_text(explanation.get('method', 'unknown method'))}): "
                   f"{ui.md_text(explanation['note'])}")
    st.markdown(
        "**How to read the heatmaps.** The model hid one small patch of each signature at a time and "
        "measured how much the distance between the two signatures changed. **Red** areas are the strokes "
        "that mattered most to the decision; strokes left uncoloured hardly mattered.\n\n"
        "- If the decision is **forged**, the red areas are where the questioned signature departs most from "
        "the reference: compare those strokes by eye (letter shapes, joins, pen lifts).\n"
        "- If the decision is **genuine**, the red areas are the features the two signatures share most.\n"
        "- Red on empty background or on the page edge suggests a poor scan rather than a forgery: rescan "
        "and try again.\n\n"
        "The heatmaps show what the model relied on, not proof of forgery."
    )


def main() -> None:
    sidebar.sidebar_ui()
    st.title("Explain a decision")
    st.markdown("See which strokes of the two signatures made the model decide **genuine** or **forged**.")
    current = ui.pair()
    if current.get("reference") and current.get("questioned"):
        st.caption("Using the signatures from the **Verify** page; upload others below to change them.")
    result = ui.pair_request_ui(REQUEST)
    if result is not None:
        heatmaps_ui(result)


if __name__ == "__main__":
    main()
