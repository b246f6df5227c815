"""Model: the model card — what the model was trained on, how it was evaluated, how good it is."""

from __future__ import annotations

from typing import Any

import streamlit as st

import api_client as api
import sidebar
import ui

# Plot names the evaluation writes (`python -m sigml evaluate --plots DIR`, `sigml benchmark`): ROC, DET and
# histogram per protocol in one image; asked for when a card lists no plots.
DEFAULT_PLOTS = ["pairwise", "reference_k10", "reference_k5"]
RATE_KEYS = ("eer", "far", "frr", "accuracy")
COLUMN_LABELS = {
    "evaluation": "evaluation", "eer": "EER (equal error rate)", "far": "FAR (forgeries accepted)",
    "frr": "FRR (genuine rejected)", "accuracy": "accuracy", "auc": "AUC", "threshold": "threshold",
    "n_genuine": "genuine comparisons", "n_forged": "forged comparisons", "k": "references per writer",
}
PROTOCOL_LABELS = {
    "pairwise": "two images", "reference_based": "against a writer's references",
    "reference_based_by_k": "against K references", "random_forgeries": "random forgeries (another writer's genuine)",
    "headline": "against 10 references (5 for CNSig)", "k": "references per writer",
}


def evaluation_label(path: str) -> str:
    """'test_CEDAR / reference_based_by_k / 10' -> 'CEDAR · test writers · against 10 references'."""
    dataset = writers = protocol = ""
    extra = []
    for part in path.split(" / "):
        kind, _, rest = part.partition("_")
        if part in ("test", "validation", "train"):
            writers = f"{part} writers"
        elif kind in ("test", "validation", "train") and rest:
            writers = f"{kind} writers"
            dataset = "mean of the datasets" if rest == "macro" else rest
        elif part.isdigit():
            protocol = f"against {part} references"
        elif part in PROTOCOL_LABELS:
            protocol = PROTOCOL_LABELS[part]
        elif part.startswith("pairwise_"):
            protocol, dataset = "two images", part.removeprefix("pairwise_")
        elif part == "overall":
            continue
        else:
            extra.append(part.replace("_", " "))
    return " · ".join(x for x in [dataset, writers, protocol, *extra] if x) or path


def plot_caption(name: str) -> str:
    """'CEDAR-pairwise' -> 'CEDAR · two images'."""
    dataset, _, plot = name.rpartition("-")
    label = PROTOCOL_LABELS.get(plot, plot.replace("_", " "))
    if plot.startswith("reference_k") and plot.removeprefix("reference_k").isdigit():
        label = f"against {plot.removeprefix('reference_k')} references"
    return f"{dataset} · {label}" if dataset else label


def summary_ui(card: dict[str, Any]) -> None:
    st.subheader(ui.md_text(card.get("name", "model")))
    st.caption(f"Version {ui.md_text(card.get('version', 'unknown'))} · created {ui.md_text(card.get('created') or 'unknown')}"
               + (f" · commit {ui.md_text(card['git_commit'])}" if card.get("git_commit") else ""))
    c1, c2, c3 = st.columns(3)
    threshold = card.get("threshold")
    c1.metric("Equal-error threshold (two images)", f"{float(threshold):.3f}" if threshold is not None else "?",
              help="Where validation writers' false accepts equal their false rejects: a reference point between the "
              "decision's two cuts below, not an answer of its own.")
    ref_threshold = (card.get("thresholds") or {}).get("reference_based")
    if ref_threshold is not None:
        normalized = card.get("reference_score") == "normalized"
        c2.metric("Threshold (against a profile)", f"{float(ref_threshold):.3f}",
                  help="Used when a signature is compared with a profile's references (two or more): "
                  + ("on the mean distance divided by the references' own spread." if normalized
                     else "on the mean distance to them."))
    arch = card.get("architecture") or {}
    if arch:
        c3.metric("Embedding size", arch.get("embedding_dim", "?"))


BAND_PROTOCOLS = {"pairwise": "Two images (one reference)", "reference_based": "Against a profile's references"}


def bands_ui(card: dict[str, Any]) -> None:
    """The three answers, their cuts and what they were measured to get right and wrong."""
    bands = card.get("decision_bands") or {}
    if not bands:
        return
    st.subheader("How the answer is decided")
    st.markdown(
        "Every score gets one of three answers. **Genuine** (green) only where at most 2 in 100 skilled forgeries of "
        "writers the model never saw score that low; **forged** (red) only where at most 2 in 100 of their genuine "
        "signatures score that high; **inconclusive** (amber) in between, where genuine signatures and skilled "
        "forgeries overlap: refer those to a specialist. The cuts were set on validation writers; the table shows "
        "how they sorted the signatures of test writers, whom nothing was tuned on.")
    rows = []
    for protocol, band in bands.items():
        test = ((card.get("metrics") or {}).get("test_macro") or {}).get("decisions", {})
        split = test.get("pairwise" if protocol == "pairwise" else "headline")
        source = "test writers (mean of the datasets)" if split else "validation writers"
        split = split or band.get("validation", {})
        if not split:
            continue
        genuine, forged = split.get("genuine", {}), split.get("forged", {})
        rows.append({
            "comparison": BAND_PROTOCOLS.get(protocol, protocol),
            "genuine at or below": round(float(band["genuine_below"]), 3),
            "forged above": round(float(band["forged_above"]), 3),
            "genuine signatures decided genuine": f"{genuine.get('genuine', 0):.0%}",
            "genuine signatures left inconclusive": f"{genuine.get('inconclusive', 0):.0%}",
            "genuine signatures decided forged": f"{genuine.get('forged', 0):.1%}",
            "skilled forgeries decided genuine": f"{forged.get('genuine', 0):.1%}",
            "skilled forgeries left inconclusive": f"{forged.get('inconclusive', 0):.0%}",
            "measured on": source,
        })
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    copy = card.get("copy_threshold")
    st.caption("A questioned image that is the reference itself, or a copy closer than any two genuine signatures "
               "ever are" + (f" (distance at most {float(copy):.3f})" if copy is not None else "")
               + ", is flagged as a copy and never answered genuine.")


def data_ui(card: dict[str, Any]) -> None:
    st.subheader("Training data and protocol")
    data = card.get("data") or {}
    protocol = data.get("protocol")
    if protocol:
        st.markdown(f"**Protocol.** {ui.md_text(protocol)}")
    sources = data.get("sources")
    if isinstance(sources, dict) and sources:
        rows = [{"dataset": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in sources.items()]
        st.dataframe(rows, hide_index=True, width="stretch")
    elif isinstance(sources, list) and sources:
        st.dataframe([s if isinstance(s, dict) else {"source": s} for s in sources], hide_index=True, width="stretch")
    rest = {k: v for k, v in data.items() if k not in ("protocol", "sources")}
    if rest:
        with st.expander("More about the data"):
            st.json(rest)
    training = card.get("training") or {}
    if training:
        facts = [f"{k.replace('_', ' ')}: **{training[k]:.1f}**" if isinstance(training[k], float)
                 else f"{k.replace('_', ' ')}: **{training[k]}**"
                 for k in ("epochs_run", "best_epoch", "images_per_s") if training.get(k) is not None]
        if facts:
            st.markdown("Training — " + " · ".join(facts))


def metrics_ui(card: dict[str, Any]) -> None:
    st.subheader("Measured performance")
    rows = ui.metric_rows(card.get("metrics") or {})
    if not rows:
        st.info("The model card has no metrics yet.")
        return
    columns: list[str] = []
    shown = []
    for row in rows:
        out: dict[str, Any] = {}
        for k, v in row.items():
            label = COLUMN_LABELS.get(k, k.replace("_", " "))
            if k == "evaluation":
                out[label] = evaluation_label(str(v))
            elif k in RATE_KEYS and isinstance(v, (int, float)):
                out[label] = f"{100 * v:.1f} %"
            elif isinstance(v, float):
                out[label] = f"{v:.3f}"
            else:  # text throughout: a column mixing numbers and blanks does not serialise
                out[label] = str(v)
        shown.append(out)
        columns.extend(k for k in out if k not in columns)
    shown = [{k: r.get(k, "") for k in columns} for r in shown]  # blanks, not "None", where a figure is absent
    st.dataframe(shown, hide_index=True, width="stretch")
    st.caption(
        "EER: error rate where false accepts equal false rejects (lower is better). "
        "FAR: forgeries accepted as genuine. FRR: genuine signatures rejected. "
        "AUC: 1.0 is a perfect separation. Rates are measured on writers the model did not train on."
    )


def plot_names(card: dict[str, Any]) -> list[str]:
    """The backend lists its plots as `[{"name", "url"}]` (plain names are accepted too); without a list,
    try the names the evaluation writes."""
    plots = card.get("plots")
    if not isinstance(plots, list):
        return DEFAULT_PLOTS
    names = [p.get("name") if isinstance(p, dict) else p for p in plots]
    return [str(n) for n in names if n]


def plots_ui(card: dict[str, Any]) -> None:
    base = api.api_url()
    names = plot_names(card)
    found = []
    for name in names:
        with ui.api_errors(f"Plot {name}"):
            png = ui.cached_model_plot(base, str(name), st.session_state.get(ui.TOKEN_KEY))
            if png:
                found.append((name, png))
    if not found:
        return
    st.subheader("ROC / DET curves")
    for start in range(0, len(found), 2):  # two per row, each at most its own size: stretched, plots blur
        for col, (name, png) in zip(st.columns(2), found[start:start + 2]):
            col.image(png, caption=plot_caption(str(name)), width="content",
                      alt=f"Evaluation plot, {plot_caption(str(name))}: ROC and DET curves and the score histograms "
                      "of genuine signatures and forgeries; the table above gives the same figures as numbers.")


def main() -> None:
    sidebar.sidebar_ui()
    st.title("The model")
    with ui.api_errors("Could not load the model card"):
        card = ui.cached_model_card(api.api_url(), st.session_state.get(ui.TOKEN_KEY))
        summary_ui(card)
        bands_ui(card)
        metrics_ui(card)
        data_ui(card)
        plots_ui(card)
        with st.expander("Full model card (JSON)"):
            st.json({k: v for k, v in card.items() if k != "plots"}, expanded=False)


if __name__ == "__main__":
    main()
