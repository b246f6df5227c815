"""sigml.benchmark: per-dataset blocks, the macro-average and its stratified interval, the table, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sigml import cli
from sigml.benchmark import (
    decision_table,
    benchmark,
    benchmark_split_file,
    dataset_seed,
    markdown_table,
    stratified_interval,
)
from sigml.testing import image_bytes, signature_image

# name: (writers, genuine, forged); writer 1 of each is a training writer, the others are test writers.
# ALPHA's writers have 11 genuine (K=5 and K=10); BETA's only 7, so K=10 is skipped there and its headline is K=5.
DATASETS = {"ALPHA": (4, 11, 2), "BETA": (4, 7, 2)}
TEST_WRITERS = 3
N_BOOT = 40
BLOCK_KEYS = {"eer", "eer_ci", "auc", "accuracy", "far", "frr", "threshold", "n_genuine", "n_forged", "n_writers", "n_boot"}


def _write_dataset(root: Path, writers: int, genuine: int, forged: int) -> None:
    for w in range(1, writers + 1):
        for kind, n, offset in (("genuine", genuine, 0), ("forged", forged, 500)):
            for i in range(n):
                path = root / f"W{w}" / kind / f"{w}_{i + 1}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(image_bytes(signature_image(seed=1000 * w + offset + i, size=(120, 48))))


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory) -> tuple[dict[str, Path], Path]:
    """Dataset folders (generic layout) and a splits folder `<NAME>/splits.csv`, made once for the module."""
    base = tmp_path_factory.mktemp("bench")
    roots = {}
    for name, (writers, genuine, forged) in DATASETS.items():
        roots[name] = base / "data" / name
        _write_dataset(roots[name], writers, genuine, forged)
        split = base / "splits" / name / "splits.csv"
        split.parent.mkdir(parents=True)
        split.write_text("dataset,writer,split\n" + "".join(
            f"{name},W{w},{'train' if w == 1 else 'test'}\n" for w in range(1, writers + 1)))
    return roots, base / "splits"


@pytest.fixture(scope="module")
def result(verifier, bench_data) -> dict:
    roots, splits = bench_data
    return benchmark(verifier, roots, splits_dir=splits, references=(5, 10), n_boot=N_BOOT, progress=False)


def test_result_shape_and_headline_fallback(result, verifier, bench_data):
    roots, splits = bench_data
    assert list(result["datasets"]) == ["ALPHA", "BETA"]
    assert result["model_version"] == verifier.model_version
    protocol = result["protocol"]
    assert protocol["writers"] == "test" and protocol["references"] == [5, 10] and protocol["n_boot"] == N_BOOT
    assert protocol["split_files"] == {name: str(splits / name / "splits.csv") for name in DATASETS}
    assert protocol["pairwise_threshold"] == verifier.card.threshold
    assert protocol["reference_threshold"] == verifier.card.threshold_for("reference_based")
    for name, d in result["datasets"].items():
        writers, genuine, forged = DATASETS[name]
        assert d["n_writers"] == TEST_WRITERS and d["n_images"] == TEST_WRITERS * (genuine + forged)
        assert BLOCK_KEYS <= set(d["pairwise"])
        assert d["pairwise"]["threshold"] == verifier.card.threshold  # the card's, not fitted on the test writers
        assert d["pairwise"]["n_genuine"] == TEST_WRITERS * genuine * (genuine - 1) // 2
        assert d["pairwise"]["n_forged"] == TEST_WRITERS * genuine * forged
        assert d["skilled_accepted"] == d["pairwise"]["far"]
        assert d["headline"] == d["reference_based_by_k"][str(d["headline_k"])]
        for k, block in d["reference_based_by_k"].items():
            assert BLOCK_KEYS <= set(block) and block["k"] == int(k)
            assert block["threshold"] == verifier.card.threshold_for("reference_based")
            assert block["n_genuine"] == TEST_WRITERS * (genuine - int(k)) and block["n_forged"] == TEST_WRITERS * forged
        assert "random_forgeries" in d
    alpha, beta = result["datasets"]["ALPHA"], result["datasets"]["BETA"]
    assert set(alpha["reference_based_by_k"]) == {"5", "10"} and alpha["headline_k"] == 10 and alpha["notes"] == []
    assert set(beta["reference_based_by_k"]) == {"5"} and beta["headline_k"] == 5
    assert any("K=10 skipped" in note for note in beta["notes"])
    assert json.loads(json.dumps(result)) == result  # JSON-ready as it is


def test_macro_is_the_mean_over_datasets(result):
    macro, ds = result["macro"], list(result["datasets"].values())
    assert macro["datasets"] == ["ALPHA", "BETA"]
    assert macro["n_writers"] == sum(d["n_writers"] for d in ds) and macro["n_images"] == sum(d["n_images"] for d in ds)
    for key in ("eer", "auc", "accuracy", "far", "frr"):
        assert macro["pairwise"][key] == pytest.approx(np.mean([d["pairwise"][key] for d in ds]))
        assert macro["headline"][key] == pytest.approx(np.mean([d["headline"][key] for d in ds]))
        assert macro["reference_based_by_k"]["5"][key] == pytest.approx(np.mean([d["reference_based_by_k"]["5"][key] for d in ds]))
    # the headline mixes each dataset's own largest K: ALPHA's K=10 with BETA's K=5
    alpha, beta = (result["datasets"][name]["reference_based_by_k"] for name in ("ALPHA", "BETA"))
    expected = (alpha["10"]["eer"] + beta["5"]["eer"]) / 2
    assert macro["headline"]["eer"] == pytest.approx(expected)
    assert macro["headline"]["k"] == {"ALPHA": 10, "BETA": 5}
    assert set(macro["reference_based_by_k"]) == {"5"}  # K=10 is not a mean over every dataset
    assert macro["skilled_accepted"] == pytest.approx(np.mean([d["skilled_accepted"] for d in ds]))


def test_intervals_are_ordered_rates(result):
    intervals = [result["macro"]["pairwise"]["eer_ci"], result["macro"]["headline"]["eer_ci"]]
    for d in result["datasets"].values():
        intervals += [d["pairwise"]["eer_ci"]] + [b["eer_ci"] for b in d["reference_based_by_k"].values()]
    for lo, hi in intervals:
        assert 0.0 <= lo <= hi <= 1.0 and math.isfinite(lo) and math.isfinite(hi)
    assert 0 < result["macro"]["pairwise"]["n_boot"] <= N_BOOT


def test_stratified_interval_averages_draw_by_draw():
    interval, n = stratified_interval([np.full(50, 0.1), np.full(50, 0.3)])
    assert interval == pytest.approx([0.2, 0.2]) and n == 50
    rising = np.linspace(0.0, 1.0, 101)
    interval, n = stratified_interval([rising, rising[::-1]])  # perfectly anti-correlated: every draw's mean is 0.5
    assert interval == pytest.approx([0.5, 0.5]) and n == 101
    with_gap = np.array([0.1, np.nan, 0.3, 0.5])
    interval, n = stratified_interval([with_gap, np.array([0.1, 0.9, 0.3, 0.5])])
    assert n == 3 and interval[0] >= 0.1 and interval[1] <= 0.5  # the draw without an EER in one dataset is left out


def test_dataset_seed_is_stable_and_differs_by_dataset():
    assert dataset_seed(0, "CEDAR") == dataset_seed(0, "CEDAR")
    assert len({dataset_seed(0, "CEDAR"), dataset_seed(0, "GPDS"), dataset_seed(1, "CEDAR")}) == 3


def test_split_file_choice():
    card_data = {"sources": [{"name": "CEDAR", "split_file": "image_pairs/CEDAR/splits.csv"}]}
    assert benchmark_split_file(card_data, "CEDAR", "test", "elsewhere") == Path("image_pairs/CEDAR/splits.csv")
    assert benchmark_split_file(card_data, "CNSig", "test", "elsewhere") == Path("elsewhere/CNSig/splits.csv")
    assert benchmark_split_file(card_data, "CNSig", "all", "elsewhere") is None


def test_benchmark_rejects_a_bad_request(verifier, bench_data):
    roots, splits = bench_data
    with pytest.raises(ValueError, match="writers"):
        benchmark(verifier, roots, writers="validation", splits_dir=splits, progress=False)
    with pytest.raises(ValueError, match="n_boot"):
        benchmark(verifier, roots, splits_dir=splits, n_boot=0, progress=False)
    with pytest.raises(ValueError, match="writers"):
        benchmark(verifier, roots, writers="all", split_files={"ALPHA": splits / "ALPHA" / "splits.csv"}, progress=False)
    with pytest.raises(ValueError, match="GAMMA"):
        benchmark(verifier, roots, splits_dir=splits, split_files={"GAMMA": splits / "ALPHA" / "splits.csv"}, progress=False)


def test_split_files_override_the_split_of_the_datasets_they_name(verifier, bench_data, tmp_path):
    """A reduced split (what the notebooks' smoke runs pass) decides ALPHA's test writers; BETA keeps splits_dir's."""
    roots, splits = bench_data
    reduced = tmp_path / "ALPHA" / "splits.csv"
    reduced.parent.mkdir()
    reduced.write_text("dataset,writer,split\nALPHA,W2,test\nALPHA,W3,test\n")
    result = benchmark(verifier, roots, splits_dir=splits, split_files={"ALPHA": str(reduced)}, references=(5,),
                       n_boot=5, progress=False)
    assert result["protocol"]["split_files"] == {"ALPHA": str(reduced), "BETA": str(splits / "BETA" / "splits.csv")}
    alpha, beta = result["datasets"]["ALPHA"], result["datasets"]["BETA"]
    assert alpha["split_file"] == str(reduced) and alpha["n_writers"] == 2
    assert alpha["n_images"] == 2 * (DATASETS["ALPHA"][1] + DATASETS["ALPHA"][2])
    assert beta["n_writers"] == TEST_WRITERS


def test_markdown_table_rows_and_numbers(result):
    table = markdown_table(result)
    assert markdown_table(json.loads(json.dumps(result))) == table  # from the JSON alone
    lines = table.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert lines[1].startswith("| --- |")
    assert len(rows) == 1 + len(result["datasets"]) + 1  # header, one per dataset, macro
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[:5] == ["dataset", "writers", "pairwise EER [95% CI]", "ref. EER K=5", "ref. EER K=10"]
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.strip("|").split("|")] for row in rows[1:]}
    alpha, beta = result["datasets"]["ALPHA"], result["datasets"]["BETA"]
    lo, hi = alpha["pairwise"]["eer_ci"]
    assert cells["ALPHA"][1] == "3"
    assert cells["ALPHA"][2] == f"{alpha['pairwise']['eer']:.1%} [{lo:.1%}, {hi:.1%}]"
    assert cells["ALPHA"][3] == f"{alpha['reference_based_by_k']['5']['eer']:.1%}"
    assert cells["ALPHA"][4].startswith(f"{alpha['reference_based_by_k']['10']['eer']:.1%} [")  # the headline K carries the CI
    assert cells["BETA"][3].startswith(f"{beta['reference_based_by_k']['5']['eer']:.1%} [") and cells["BETA"][4] == "–"
    assert cells["BETA"][5:] == [f"{beta['headline']['auc']:.3f}", f"{beta['headline']['accuracy']:.1%}",
                                 f"{beta['headline']['far']:.1%}", f"{beta['headline']['frr']:.1%}", f"{beta['skilled_accepted']:.1%}"]
    macro = result["macro"]
    macro_cells = cells["**macro (2 datasets)**"]
    assert macro_cells[1] == str(macro["n_writers"])
    assert macro_cells[2].startswith(f"{macro['pairwise']['eer']:.1%} [")
    assert macro_cells[3] == f"{macro['reference_based_by_k']['5']['eer']:.1%}"
    assert macro_cells[4].startswith(f"{macro['headline']['eer']:.1%} [") and macro_cells[4].endswith("†")
    assert len(macro_cells) == len(header) and macro_cells[-1] == f"{macro['skilled_accepted']:.1%}"
    assert any(line.startswith("† ") and "BETA (K=5)" in line for line in lines)


def test_decisions_follow_the_cards_bands(result):
    """The test card has no bands: its three-way decision is the two-way verdict at the EER thresholds, so the
    shares must equal the FAR/FRR there, with nothing inconclusive; the macro is the mean over datasets."""
    for d in result["datasets"].values():
        for protocol, block in (("pairwise", d["pairwise"]), ("headline", d["headline"])):
            split = d["decisions"][protocol]
            for truth in ("genuine", "forged"):
                assert sum(split[truth].values()) == pytest.approx(1.0)
                assert split[truth]["inconclusive"] == 0.0
            assert split["forged"]["genuine"] == pytest.approx(block["far"])
            assert split["genuine"]["forged"] == pytest.approx(block["frr"])
    macro = result["macro"]["decisions"]["headline"]["forged"]["genuine"]
    assert macro == pytest.approx(np.mean([d["decisions"]["headline"]["forged"]["genuine"]
                                           for d in result["datasets"].values()]))


def test_decision_table_rows(result):
    table = decision_table(result)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(result["datasets"]) + 1
    alpha = result["datasets"]["ALPHA"]["decisions"]
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    assert cells[0] == "ALPHA" and cells[1] == f"{alpha['pairwise']['genuine']['genuine']:.1%}"
    assert cells[7] == f"{alpha['headline']['genuine']['genuine']:.1%}" and len(cells) == 13
    old = json.loads(json.dumps(result))
    for d in old["datasets"].values():
        del d["decisions"]
    assert decision_table(old) == ""  # a JSON from before the bands renders no decision table


def test_decision_table_says_how_the_bands_were_fitted(result, verifier):
    assert result["protocol"]["band_fit"] == {p: b.get("fit", {"rates": "pooled"})
                                              for p, b in verifier.card.decision_bands.items()}
    held = json.loads(json.dumps(result))
    held["protocol"]["band_fit"] = {"reference_based": {"rates": "mean over datasets", "level": 0.9, "n_boot": 200}}
    assert "averaged over datasets, in 90% of 200 resamples of the writers" in decision_table(held)
    pooled = json.loads(json.dumps(result))
    pooled["protocol"].pop("band_fit")  # a JSON from before the fit was recorded
    assert "at most 2% of their skilled forgeries decided genuine" in decision_table(pooled)


def test_cli_end_to_end(test_model_path, bench_data, tmp_path, capsys):
    roots, splits = bench_data
    out, md = tmp_path / "out" / "bench.json", tmp_path / "md" / "table.md"
    data_args = [a for name, root in roots.items() for a in ("--data", f"{name}={root}")]
    rc = cli.main(["benchmark", "--model", str(test_model_path), *data_args,
                   "--splits", str(splits), "--references", "5,10", "--boot", "20", "--out", str(out), "--markdown", str(md),
                   "--no-progress"])
    assert rc == 0
    written = json.loads(out.read_text())
    assert list(written["datasets"]) == ["ALPHA", "BETA"] and written["protocol"]["n_boot"] == 20
    assert md.read_text() == markdown_table(written) + "\nThree-way decision:\n\n" + decision_table(written)
    printed = capsys.readouterr().out
    assert "**macro (2 datasets)**" in printed and f"result -> {out}" in printed


def test_cli_errors_are_one_line(test_model_path, bench_data, tmp_path, capsys):
    roots, _ = bench_data
    rc = cli.main(["benchmark", "--model", str(test_model_path), "--data", f"ALPHA={roots['ALPHA']}",
                   "--splits", str(tmp_path / "no_splits"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    rc = cli.main(["benchmark", "--model", str(test_model_path), "--data", f"ALPHA={roots['ALPHA']}",
                   "--data", f"ALPHA={roots['BETA']}", "--no-progress"])
    assert rc == 2 and "twice" in capsys.readouterr().err


def test_update_card_stores_each_dataset_and_the_macro(result, test_model_path, tmp_path):
    import shutil

    from sigml.benchmark import update_card
    from sigml.modelcard import ModelCard, card_path_for

    weights = tmp_path / "m.safetensors"
    shutil.copy(test_model_path, weights)
    shutil.copy(card_path_for(test_model_path), card_path_for(weights))
    update_card(weights, result)
    metrics = ModelCard.load(card_path_for(weights)).metrics
    for name, d in result["datasets"].items():
        stored = metrics[f"test_{name}"]
        assert stored["dataset"] == name and stored["pairwise"] == d["pairwise"]
        assert stored["reference_based_by_k"] == d["reference_based_by_k"]
    assert metrics["test_macro"]["headline"]["eer"] == result["macro"]["headline"]["eer"]


def test_automation_reads_the_decisions_of_k_references_and_of_one():
    """Automation: the share of genuine signatures decided genuine (no specialist needed) with K references and with
    one, beside the two wrong decisions; taken from the band split of each protocol."""
    from sigml.benchmark import automation

    decisions = {
        "headline": {"genuine": {"genuine": 0.7, "inconclusive": 0.28, "forged": 0.02},
                     "forged": {"genuine": 0.01, "inconclusive": 0.3, "forged": 0.69}},
        "pairwise": {"genuine": {"genuine": 0.5, "inconclusive": 0.45, "forged": 0.05},
                     "forged": {"genuine": 0.03, "inconclusive": 0.5, "forged": 0.47}},
    }
    assert automation(decisions) == {
        "references": {"genuine_decided_genuine": 0.7, "forgery_decided_genuine": 0.01, "genuine_decided_forged": 0.02},
        "one_reference": {"genuine_decided_genuine": 0.5, "forgery_decided_genuine": 0.03, "genuine_decided_forged": 0.05},
    }


def test_automation_of_every_dataset_and_of_the_macro(result):
    for d in result["datasets"].values():
        assert d["automation"]["references"]["genuine_decided_genuine"] == d["decisions"]["headline"]["genuine"]["genuine"]
        assert d["automation"]["one_reference"]["forgery_decided_genuine"] == d["decisions"]["pairwise"]["forged"]["genuine"]
    shares = [d["automation"]["references"]["genuine_decided_genuine"] for d in result["datasets"].values()]
    assert result["macro"]["automation"]["references"]["genuine_decided_genuine"] == pytest.approx(np.mean(shares))
