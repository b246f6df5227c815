"""Pages that read well: upload widgets state the server's real size limit, the Model page speaks in human labels,
the Datasets page shows every image of a writer (AppTest against the real test backend)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

INTERFACE_DIR = Path(__file__).resolve().parents[1]


def run(target):
    at = target.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_module(name: str):
    spec = importlib.util.spec_from_file_location(f"page_{name}", INTERFACE_DIR / "app_pages" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_upload_widgets_state_the_servers_limit(app_test):
    at = run(app_test("verify"))
    limits = [u.proto.max_upload_size_mb for u in at.get("file_uploader")]
    assert limits == [10, 10]  # the test backend's SIGVER_MAX_UPLOAD_BYTES, 10 MiB, read from GET /api/


def test_the_limit_comes_from_the_server(monkeypatch):
    import streamlit as st

    import api_client as api
    import ui

    st.cache_data.clear()
    monkeypatch.setattr(api.SigverClient, "index", lambda self: {"limits": {"max_upload_bytes": 3 * 1024 * 1024 + 5}})
    assert ui.cached_upload_limit_mb("http://server-a") == 3
    monkeypatch.setattr(api.SigverClient, "index", lambda self: {"name": "an older server"})
    assert ui.cached_upload_limit_mb("http://server-b") == ui.DEFAULT_UPLOAD_LIMIT_MB


def test_model_page_uses_human_labels(app_test):
    at = run(app_test("model"))
    table = at.dataframe[0].value
    assert {"EER (equal error rate)", "FAR (forgeries accepted)", "FRR (genuine rejected)"} <= set(table.columns)
    assert not [c for c in table.columns if "_" in c]
    assert not [e for e in table["evaluation"] if "_" in e and "-" not in e]  # no raw metric keys


def test_evaluation_and_plot_labels():
    model = page_module("5_Model.py")
    assert model.evaluation_label("test_CEDAR / reference_based_by_k / 10") == "CEDAR · test writers · against 10 references"
    assert model.evaluation_label("validation / pairwise_GPDS") == "GPDS · validation writers · two images"
    assert model.evaluation_label("test_macro / headline").startswith("mean of the datasets · test writers · against 10")
    assert model.plot_caption("CEDAR-pairwise") == "CEDAR · two images"
    assert model.plot_caption("reference_k10") == "against 10 references"
    assert model.plot_caption("GPDS-reference_k5") == "GPDS · against 5 references"
    assert model.DEFAULT_PLOTS == ["pairwise", "reference_k10", "reference_k5"]  # what evaluation writes


def test_datasets_shows_every_image_of_a_writer(app_test, backend_url):
    import api_client as api
    import ui

    at = run(app_test("datasets"))
    name = at.selectbox(key="dataset_name").value
    split = at.selectbox(key=f"dataset_split_{name}").value
    writer = at.selectbox(key=f"dataset_writer_{name}_{split}").value
    data = api.SigverClient(backend_url).writer(name, writer)
    shown = {caption for img in at.get("image") for caption in img.captions}
    expected = {ui.md_text(item["path"].rsplit("/", 1)[-1]) for item in data["genuine"] + data["forged"]}  # as text
    assert expected <= shown
    assert "more." not in "\n".join(c.value for c in at.caption)  # no "… and N more"
