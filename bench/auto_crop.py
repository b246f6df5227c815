"""`auto_crop` against a crop by hand on test documents: does the located box give the same decision?

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python bench/auto_crop.py --pages 200 --out docs/results/auto_crop.json

Test documents (`sigml.synthdocs`, split "test": fonts and security backgrounds the locator never saw), each holding
one genuine signature of a **test** writer (`--writers validation`: validation writers' signatures on the training
fonts, the documents to choose a setting on) (`image_pairs/<NAME>/splits.csv`) of the six datasets. For each page the
reference is another genuine signature of the same writer (a cropped scan, as enrolled), and the page is judged
  (a) as the API does with `auto_crop=true` (`sigml.locate.preprocess_located`: the first of the locator's boxes that
      passes the quality gate; a page where none passes is refused, never judged whole), and
  (b) cropped by hand to the signature's true box.
  (c) cropped by hand less tightly: the true box widened by `--looser` shares of its width and height on each
      side (a clerk's looser crop of the same signature, which takes in whatever printing lies next to it).
With `--forged-pages N`, N more test documents each hold one skilled forgery of a test writer, judged the same way
against a genuine reference of the forged writer: how a signature cut from a page is decided in both directions
(the rates an answer gives were measured on scans).
Printed: how many pages `auto_crop` judged, on the signature (IoU >= 0.5 with the true box), elsewhere, or whole
(a page the quality gate let through as a signature crop: the judgement no page should get); and how
often its decision is the hand-cropped one's, over every page (a refusal counts as a different answer) and over the
pages it judged; and how often a looser hand crop keeps the tight hand crop's decision (what a locator's box,
never exactly the true one, can hope to agree with). The decisions are the shipped model card's (served runtime: the ONNX export when the card names it), as the model gives them; served, a signature cut from a page is never
answered forged (`sigml.decision.on_a_page`): `same_served_decision_rate` compares the answers as served.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from sigml import decision   # noqa: E402
from sigml.datasets import read_dataset   # noqa: E402
from sigml.errors import ImageError   # noqa: E402
from sigml.inference import Verifier   # noqa: E402
from sigml.locate import DEFAULT_MODEL, box_iou, load_model, preprocess_located   # noqa: E402
from sigml.splits import read_splits_csv   # noqa: E402
from sigml.synthdocs import SQUASHED, SignatureSource, make_page, require_fonts  # noqa: E402

DATASETS = ("BHSig260-Bengali", "BHSig260-Hindi", "CEDAR", "CNSig", "GPDS", "SigComp2011-Dutch")
# the documents' fonts and backgrounds per writer split: test writers on the test fonts the locator never saw;
# validation writers on the training fonts, as the locator's own validation documents (`sigml.locate_net`)
FONTS = {"test": "test", "validation": "train"}


def test_genuine(data: Path, splits: Path, *, genuine: bool = True, writers: str = "test"
                 ) -> tuple[list[SignatureSource], list[tuple[str, str]], dict]:
    """Every genuine signature (`genuine=False`: skilled forgery) of the `writers` ("test" or "validation"): the
    page's sources, their (dataset, writer), and the genuine paths of each (dataset, writer)."""
    sources, owners, by_writer = [], [], defaultdict(list)
    for name in DATASETS:
        assignment = read_splits_csv(splits / name / "splits.csv")
        for record in read_dataset(data / name, "auto", name):
            if assignment.get(record.writer) != writers:
                continue
            path = str(data / name / record.path)
            if record.genuine:
                by_writer[(name, record.writer)].append(path)
            if record.genuine == genuine:
                sources.append(SignatureSource(path, widen=name in SQUASHED))
                owners.append((name, record.writer))
    return sources, owners, by_writer


def png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def decide_crop(verifier: Verifier, reference, data: bytes, box: tuple[int, int, int, int]) -> str:
    """The decision on the page cropped to `box` by hand; "refused" where the crop itself fails (too small, too faint
    after the page's capture)."""
    try:
        by_hand = preprocess_located(data, verifier.card.preprocessing, crop=box, array=True).image
        return verifier.verify_tensors(reference, verifier.embedder.wrap(by_hand)).decision
    except ImageError:
        return "refused"


def widened(box: tuple[int, int, int, int], share: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """`box` (l, t, r, b) widened by `share` of its width and height on each side, inside an image of `size`."""
    l, t, r, b = box
    dw, dh = int(share * (r - l)), int(share * (b - t))
    return max(0, l - dw), max(0, t - dh), min(size[0], r + dw), min(size[1], b + dh)


def decision_shares(counts: Counter, *prefixes: str) -> dict[str, dict[str, float]]:
    """Per prefix ("hand_", "auto_"), the share of pages given each decision (refused included)."""
    pages = max(counts["pages"], 1)
    return {prefix.rstrip("_"): {d: counts[f"{prefix}{d}"] / pages for d in ("genuine", "inconclusive", "forged",
                                                                          "refused")} for prefix in prefixes}


def judge_forged_pages(verifier: Verifier, locator, data: Path, splits: Path, pages: int, seed: int,
                       writers: str = "test") -> Counter:
    """`pages` documents each holding one skilled forgery of a writer of `writers`, judged against a genuine
    reference of that writer cropped by hand to the true box and with `auto_crop`: the decisions' counts."""
    sources, owners, by_writer = test_genuine(data, splits, genuine=False, writers=writers)
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    for page_seed in rng.choice(10 ** 9, pages, replace=False):
        page = make_page(int(page_seed), sources, split=FONTS[writers], n_signatures=1)
        if not page.boxes:
            continue
        owner = owners[page.meta["signatures"][0]]
        reference = verifier.preprocess(by_writer[owner][int(rng.integers(0, len(by_writer[owner])))])
        data_bytes = png(page.image)
        counts["pages"] += 1
        counts[f"hand_{decide_crop(verifier, reference, data_bytes, tuple(int(v) for v in page.boxes[0]))}"] += 1
        try:
            judged = preprocess_located(data_bytes, verifier.card.preprocessing, auto_crop=True, array=True,
                                        model=locator)
            counts[f"auto_{verifier.verify_tensors(reference, verifier.embedder.wrap(judged.image)).decision}"] += 1
        except ImageError:
            counts["auto_refused"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str((ROOT / ".." / "shared" / "datasets").resolve()))
    p.add_argument("--splits", default=str(ROOT / "image_pairs"))
    p.add_argument("--model", default=str(ROOT / "trained_model_parameters" / "siamese_resnet18.safetensors"))
    p.add_argument("--locator", default=str(DEFAULT_MODEL), help="locator model JSON")
    p.add_argument("--pages", type=int, default=200)
    p.add_argument("--forged-pages", type=int, default=0, help="documents holding a skilled forgery instead")
    p.add_argument("--looser", default="0.02,0.05", help="hand crops widened by these shares on each side")
    p.add_argument("--seed", type=int, default=20271)
    p.add_argument("--writers", default="test", choices=sorted(FONTS),
                   help="whose signatures the documents hold (validation: to choose a setting; test: to report)")
    p.add_argument("--out", help="JSON of the figures")
    p.add_argument("--pages-out", help="JSON lines, one per genuine page: its writer, boxes and both decisions")
    args = p.parse_args(argv)
    require_fonts(FONTS[args.writers])  # the documented documents, or none

    verifier = Verifier.from_files(args.model, runtime="auto")
    locator = load_model(args.locator)
    looser = [float(f) for f in args.looser.split(",") if f]
    cfg = verifier.card.preprocessing
    sources, owners, by_writer = test_genuine(Path(args.data), Path(args.splits), writers=args.writers)
    rng = np.random.default_rng(args.seed)
    page_lines = []
    counts: Counter = Counter()
    per_dataset: dict[str, Counter] = defaultdict(Counter)
    for seed in rng.choice(10 ** 9, args.pages, replace=False):
        page = make_page(int(seed), sources, split=FONTS[args.writers], n_signatures=1)
        if not page.boxes:
            counts["no_room_for_a_signature"] += 1
            continue
        owner = owners[page.meta["signatures"][0]]
        others = [q for q in by_writer[owner] if q != sources[page.meta["signatures"][0]].path]
        reference = verifier.preprocess(others[int(rng.integers(0, len(others)))])
        data = png(page.image)
        truth = tuple(int(v) for v in page.boxes[0])
        tally = per_dataset[owner[0]]

        counts["pages"] += 1
        tally["pages"] += 1
        hand = decide_crop(verifier, reference, data, truth)
        for share in looser:
            loose = decide_crop(verifier, reference, data, widened(truth, share, page.image.size))
            counts[f"looser_{share:g}_same_decision"] += loose == hand
        located_box = None
        try:
            judged = preprocess_located(data, cfg, auto_crop=True, array=True, model=locator)
            auto = verifier.verify_tensors(reference, verifier.embedder.wrap(judged.image)).decision
            located_box = None if judged.located is None else [int(v) for v in judged.located.box]
            counts["judged"] += 1
            if judged.located is None:  # the quality gate let the page through as it is
                counts["judged_whole_page"] += 1
            else:
                on_signature = box_iou(np.array([judged.located.box], float), np.array([truth], float))[0, 0] >= 0.5
                counts["judged_on_the_signature" if on_signature else "judged_elsewhere"] += 1
            tally["judged"] += 1
        except ImageError:  # not_a_signature with suggested crops, or blank
            auto = "refused"
            counts["refused"] += 1
        counts[f"hand_{hand}"] += 1
        counts[f"auto_{auto}"] += 1
        page_lines.append({"seed": int(seed), "dataset": owner[0], "writer": owner[1], "true_box": list(truth),
                           "located_box": located_box, "hand": hand, "auto": auto})
        same = auto == hand
        counts["same_decision"] += same
        # as served: a signature cut from a page (both are) is never answered forged
        counts["same_served_decision"] += decision.on_a_page(auto) == decision.on_a_page(hand)
        tally["same_decision"] += same
        if auto != "refused":
            counts["same_decision_when_judged"] += same
    forged = judge_forged_pages(verifier, locator, Path(args.data), Path(args.splits), args.forged_pages,
                                args.seed + 1, args.writers) if args.forged_pages else {}
    report = {
        "command": "bench/auto_crop.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model_version": verifier.model_version,
        "writers": args.writers,
        "locator": {"card": Path(args.locator).name, "threshold": locator.threshold, "region_cut": locator.region_cut},
        "counts": dict(counts),
        "same_decision_rate": counts["same_decision"] / max(counts["pages"], 1),
        "same_served_decision_rate": counts["same_served_decision"] / max(counts["pages"], 1),
        "same_decision_rate_when_judged": counts["same_decision_when_judged"] / max(counts["judged"], 1),
        "judged_rate": counts["judged"] / max(counts["pages"], 1),
        "judged_on_the_signature_rate": counts["judged_on_the_signature"] / max(counts["judged"], 1),
        "looser_hand_crop_same_decision_rate": {f"{share:g}": counts[f"looser_{share:g}_same_decision"]
                                                / max(counts["pages"], 1) for share in looser},
        "per_dataset": {k: dict(v) for k, v in sorted(per_dataset.items())},
        "decisions": {"genuine_pages": decision_shares(counts, "hand_", "auto_"),
                      **({"forged_pages": decision_shares(forged, "hand_", "auto_")} if forged else {})},
        **({"forged_counts": dict(forged)} if forged else {}),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.pages_out:
        Path(args.pages_out).write_text("".join(json.dumps(line) + "\n" for line in page_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
