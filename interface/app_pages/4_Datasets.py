"""Datasets: browse the signature datasets the backend can read, and see the model at work on them."""

from __future__ import annotations

import random
from typing import Any

import streamlit as st

import api_client as api
import sidebar
import ui

PAIR_RESULT_KEY = "dataset_pair_result"
BATCH_RESULT_KEY = "dataset_batch_result"
ALL_SPLITS = "all writers"
DEFAULT_SPLIT = "test"
KIND_LABELS = {
    "genuine": "genuine pair (two genuine signatures of one writer)",
    "skilled": "skilled forgery (a genuine signature and a forger's imitation of it)",
    "random": "random forgery (genuine signatures of two different writers)",
    "mixed": "a mix of all three",
}


def choose_dataset_ui(base: str) -> tuple[dict[str, Any], str | None] | None:
    datasets = ui.cached_datasets(base, token())
    if not datasets:
        st.info("The server has no datasets. Start it with `make run DATA=DIR`, where DIR holds dataset folders "
                "(e.g. `DATA=../shared/datasets`), or put one in its data folder, `organized_data/` by default "
                "(layouts: `organized_data/README.md`).")
        return None
    names = [d["name"] for d in datasets]
    c1, c2 = st.columns(2)
    name = c1.selectbox("Dataset", names, key="dataset_name")
    info = ui.cached_dataset(base, name, token())
    splits = [ALL_SPLITS] + [s for s in info.get("splits", []) if s]
    # test writers first: the model never saw them, so the random pair and the batch measure what a clerk will get
    split = c2.selectbox("Split", splits, index=splits.index(DEFAULT_SPLIT) if DEFAULT_SPLIT in splits else 0,
                         key=f"dataset_split_{name}",
                         help="Writers are split into train / validation / test: the model never saw test writers.")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Writers", info.get("writers", len(info.get("writer_ids", []))))
    m2.metric("Genuine signatures", info.get("genuine", "?"))
    m3.metric("Forgeries", info.get("forged", "?"))
    m4.metric("Layout", info.get("layout", "?"))
    return info, (None if split == ALL_SPLITS else split)


THUMBS_PER_PAGE = 24


def token() -> str | None:
    """The signed-in clerk's token: every request counts against their own budget, not the interface's."""
    return st.session_state.get(ui.TOKEN_KEY)


def thumbnails(base: str, images: list[dict[str, Any]], label: str, page_key: str) -> None:
    """Every image of the writer, THUMBS_PER_PAGE at a time (dataset images have their own generous rate scope)."""
    if not images:
        st.caption(f"No {label} signatures.")
        return
    pages = -(-len(images) // THUMBS_PER_PAGE)
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page of the {label} signatures", min_value=1, max_value=pages, value=1,
                                   key=page_key))
    start = (page - 1) * THUMBS_PER_PAGE
    shown = images[start:start + THUMBS_PER_PAGE]
    if pages > 1:
        st.caption(f"Images {start + 1}–{start + len(shown)} of {len(images)} · page {page} of {pages}")
    per_row = 6
    for row in range(0, len(shown), per_row):
        cols = st.columns(per_row)
        for col, item in zip(cols, shown[row:row + per_row]):
            with col, ui.api_errors():
                file_name = item["path"].rsplit("/", 1)[-1]
                st.image(ui.cached_dataset_image(base, item["url"], token()), caption=ui.md_text(file_name),
                         width="stretch", alt=ui.alt_text(f"{label.capitalize()} signature {file_name}"))


def writer_ui(base: str, info: dict[str, Any], split: str | None) -> None:
    split_of = info.get("split_of_writer") or {}
    writers = [str(w) for w in info.get("writer_ids", [])]
    if split and split_of:
        writers = [w for w in writers if split_of.get(w) == split]
    if not writers:
        st.info("No writers in this split.")
        return
    writer = st.selectbox("Writer", writers, key=f"dataset_writer_{info.get('name')}_{split}")
    data = ui.cached_writer(base, info["name"], writer, token())
    st.caption(f"Writer {ui.md_text(writer)} · split: {ui.md_text(data.get('split') or 'none')}")
    st.markdown(f"**Genuine** ({len(data.get('genuine', []))})")
    key = f"dataset_thumbs_{info.get('name')}_{writer}"
    thumbnails(base, data.get("genuine", []), "genuine", f"{key}_genuine")
    st.markdown(f"**Forged** ({len(data.get('forged', []))})")
    thumbnails(base, data.get("forged", []), "forged", f"{key}_forged")


def random_pair_ui(base: str, info: dict[str, Any], split: str | None) -> None:
    kind = st.radio("Kind of pair", ["genuine", "skilled", "random"], format_func=KIND_LABELS.get,
                    key="dataset_pair_kind", horizontal=False)
    if st.button("Draw a random pair and verify", key="dataset_pair_button", type="primary", icon=":material/casino:"):
        with st.spinner("Drawing a pair and verifying it…"), ui.api_errors("Could not verify a pair"):
            client = ui.client()
            seed = random.randrange(1_000_000)
            pairs = client.pairs(info["name"], split=split, kind=kind, limit=1, seed=seed)
            if not pairs:
                st.warning("No pair of this kind in this split.")
                st.session_state.pop(PAIR_RESULT_KEY, None)
            else:
                pair = pairs[0]
                a = client.dataset_image(pair["url_a"])
                b = client.dataset_image(pair["url_b"])
                result = client.verify((pair["path_a"].rsplit("/", 1)[-1], a), (pair["path_b"].rsplit("/", 1)[-1], b))
                st.session_state[PAIR_RESULT_KEY] = {"pair": pair, "a": a, "b": b, "result": result}
    stored = st.session_state.get(PAIR_RESULT_KEY)
    if not stored:
        return
    pair, result = stored["pair"], stored["result"]
    left, right = st.columns(2)
    with left:
        ui.show_image(stored["a"], f"Reference · writer {pair.get('writer_a')} · {pair.get('path_a')}")
    with right:
        ui.show_image(stored["b"], f"Questioned · writer {pair.get('writer_b')} · {pair.get('path_b')}")
    truth = pair.get("label", "?")
    decision = ui.decision_of(result)
    ui.result_ui(result)
    msg = f"Ground truth: **{ui.md_text(truth)}** ({ui.md_text(pair.get('kind'))} pair). "
    if decision == "inconclusive":
        st.warning(msg + "The model left it **inconclusive**: a specialist would decide.")
    else:
        correct = decision == truth
        (st.success if correct else st.error)(msg + f"The decision is **{'right' if correct else 'wrong'}**.")


def batch_ui(info: dict[str, Any], split: str | None) -> None:
    c1, c2, c3 = st.columns(3)
    kind = c1.selectbox("Kind of pairs", ["mixed", "skilled", "genuine", "random"], key="dataset_batch_kind",
                        format_func=lambda k: k if k != "mixed" else "mixed (all kinds)")
    limit = c2.slider("Number of pairs", 5, 200, 20, step=5, key="dataset_batch_limit")
    seed = c3.number_input("Seed", 0, 1_000_000, 0, key="dataset_batch_seed",
                           help="The same seed draws the same pairs again.")
    if st.button("Run the batch", key="dataset_batch_button", icon=":material/play_arrow:"):
        with st.spinner(f"Verifying {limit} pairs…"), ui.api_errors("The batch failed"):
            st.session_state[BATCH_RESULT_KEY] = ui.client().verify_pairs(
                info["name"], split=split, kind=kind, limit=int(limit), seed=int(seed)
            )
    batch = st.session_state.get(BATCH_RESULT_KEY)
    if not batch:
        return
    results = batch.get("results", [])
    m1, m2, m3, m4 = st.columns(4)
    share = lambda key: f"{100 * float(batch.get(key) or 0.0):.1f} %"  # noqa: E731
    m1.metric("Decided right", share("accuracy"), help="Pairs whose decision is the ground truth.")
    m2.metric("Inconclusive", share("inconclusive"), help="Pairs the model left to a specialist.")
    m3.metric("Decided wrong", share("wrong"), help="Pairs decided the opposite of the ground truth.")
    m4.metric("Pairs", batch.get("n", len(results)))
    by_kind: dict[str, list[bool]] = {}
    for r in results:
        by_kind.setdefault(str(r.get("kind")), []).append(r.get("correct") is True)
    if len(by_kind) > 1:
        st.caption("Decided right: " + " · ".join(
            f"{k}: {100 * sum(v) / len(v):.0f} % of {len(v)}" for k, v in sorted(by_kind.items())))
    outcome = {True: "✔ right", False: "✘ wrong", None: "? inconclusive"}
    rows = [
        {
            "kind": r.get("kind"), "truth": r.get("label"), "decision": r.get("decision"),
            "outcome": outcome.get(r.get("correct"), "?"), "score": round(ui.score_of(r), 4),
            "writer A": r.get("writer_a"), "image A": r.get("path_a"),
            "writer B": r.get("writer_b"), "image B": r.get("path_b"),
        }
        for r in results
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Model {ui.md_text(batch.get('model_version', 'unknown'))}")


def main() -> None:
    sidebar.sidebar_ui()
    st.title("Datasets")
    st.markdown("Browse the signature collections the server can read and watch the model on pairs it has "
                "(or has not) seen.")
    base = api.api_url()
    with ui.api_errors("Could not load the datasets"):
        chosen = choose_dataset_ui(base)
        if chosen is None:
            return
        info, split = chosen
        browse_tab, pair_tab, batch_tab = st.tabs(
            ["Browse a writer", "Try the model on a random pair", "Accuracy on a batch of pairs"]
        )
        with browse_tab:
            writer_ui(base, info, split)
        with pair_tab:
            random_pair_ui(base, info, split)
        with batch_tab:
            batch_ui(info, split)


if __name__ == "__main__":
    main()
