"""The signature locator's network: a small fully convolutional net, trained from scratch on synthetic documents.

    python -m sigml.locate_net pages --data ../shared/datasets --split train --pages 3000 --out runs/locnet/pages
    python -m sigml.locate_net train --pages-dir runs/locnet/pages --out runs/locnet --steps 3000
    python -m sigml.locate_net pages --data ../shared/datasets --split validation --pages 300 --out runs/locnet/pages
    python -m sigml.locate_net card runs/locnet/locnet.safetensors --validation-pages runs/locnet/pages \\
        --out trained_model_parameters/signature_locator_net.json

Input: `sigml.locate.page_input` (the page at most `NET_SIDE` pixels a side, min-pooled so thin strokes survive:
ink darkness against the local paper, and colour saturation, as two channels). Output: a map at a quarter of that
size, the logit of "this cell lies in a handwritten signature's box". `sigml.locate` turns the map into boxes
(connected regions, tightened to the ink in them) and serves the ONNX export with ONNX Runtime, so serving never
imports torch. Pages: `sigml.synthdocs` documents of the *training* writers (training fonts and backgrounds); the
threshold is chosen on pages of the *validation* writers; `bench/locate.py` measures on the test writers, test
fonts and test backgrounds.

Every run is reproducible from its arguments and seed (written to `config.json` beside the weights); the
weights are stored as safetensors, never a pickle.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

STRIDE = 4  # the map's cell, in input pixels
CROP = 384  # training crops (input pixels)


def build_net(width: int = 32):
    """Encoder to 1/8 with dilated context, decoder back to 1/4; about 0.13 M parameters."""
    import torch
    from torch import nn

    def block(cin, cout, stride=1, dilation=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class LocatorNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.down4 = nn.Sequential(block(2, w // 2, 2), block(w // 2, w, 2), block(w, w))
            self.down8 = nn.Sequential(block(w, 3 * w // 2, 2), block(3 * w // 2, 3 * w // 2, 1, 2),
                                       block(3 * w // 2, 3 * w // 2, 1, 4), block(3 * w // 2, 3 * w // 2, 1, 8),
                                       block(3 * w // 2, 3 * w // 2, 1, 16))
            self.up = nn.Sequential(block(w + 3 * w // 2, w), nn.Conv2d(w, 1, 1))

        def forward(self, x):
            f4 = self.down4(x)
            f8 = self.down8(f4)
            up = nn.functional.interpolate(f8, size=f4.shape[-2:], mode="nearest")
            return self.up(torch.cat([f4, up], dim=1))

    return LocatorNet()


# ---------------------------------------------------------------- pages


def target_map(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Share of each STRIDE x STRIDE cell covered by a signature box (boxes in input pixels, exclusive ends)."""
    h, w = shape
    full = np.zeros((h, w), np.float32)
    for l, t, r, b in np.asarray(boxes, np.float64).reshape(-1, 4):
        full[max(0, int(round(t))):max(0, int(round(b))), max(0, int(round(l))):max(0, int(round(r)))] = 1.0
    hh, ww = h // STRIDE, w // STRIDE
    return full[:hh * STRIDE, :ww * STRIDE].reshape(hh, STRIDE, ww, STRIDE).mean(axis=(1, 3))


def _make_page(job: tuple) -> str:
    from .locate import page_input
    from .synthdocs import make_page

    sources, seed, name, font_split, out = job
    path = Path(out) / f"{name}_{seed}.npz"
    if not path.is_file():
        doc = make_page(int(seed), sources, split=font_split)
        x, scale = page_input(doc.image)
        boxes = np.asarray(doc.boxes, np.float64).reshape(-1, 4) / scale
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, x=x, boxes=boxes.astype(np.float32), kind=np.array(doc.kind))
        tmp.replace(path)  # a reader never sees half a file
    return str(path)


def make_pages(data: str, splits: str, split: str, pages: int, out: str | Path, *, seed: int = 0,
               workers: int = 1, writers: str | None = None) -> list[str]:
    """Draw `pages` documents of `split` (fonts/backgrounds) with the signatures of `writers` (default: the
    writers of the same split) and keep their network inputs and boxes as .npz (no pickle)."""
    from multiprocessing import get_context

    from .synthdocs import signature_pool

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = signature_pool(data, splits, writers or split)
    font_split = "test" if split == "test" else "train"
    seeds = np.random.default_rng(seed).choice(10 ** 9, pages, replace=False)
    jobs = [(sources, int(s), split, font_split, out) for s in seeds]  # named by the writers' split
    start, done = time.time(), []
    pool = get_context("fork").Pool(workers) if workers > 1 else None
    results = pool.imap_unordered(_make_page, jobs, chunksize=4) if pool else map(_make_page, jobs)
    for i, path in enumerate(results):
        done.append(path)
        if (i + 1) % 100 == 0:
            log.info("%d/%d pages (%.2f s/page)", i + 1, pages, (time.time() - start) / (i + 1))
    if pool:
        pool.close()
    return sorted(done)


def _make_crop_page(job: tuple) -> str:
    """A real signature crop as the network sees an upload of it, its box the ink's (a crop is a signature too:
    without these the network learns signatures only at the size they have on a page)."""
    from .locate import page_input
    from .preprocessing import load_image, otsu_threshold, to_grayscale

    source, index, name, out = job
    path = Path(out) / f"{name}_crop{index}.npz"
    if not path.is_file():
        image = load_image(source.path)
        x, scale = page_input(image)
        gray = to_grayscale(image)
        ink = gray < otsu_threshold(gray)
        if ink.any():
            rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
            boxes = np.array([[cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]], np.float64) / scale
        else:
            boxes = np.zeros((0, 4))
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, x=x, boxes=boxes.astype(np.float32), kind=np.array("crop"))
        tmp.replace(path)
    return str(path)


def make_crop_pages(data: str, splits: str, split: str, crops: int, out: str | Path, *, seed: int = 0,
                    workers: int = 1) -> list[str]:
    """`crops` real signature crops of `split`'s writers (all datasets, drawn at random) kept like pages."""
    from multiprocessing import get_context

    from .synthdocs import signature_pool

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = signature_pool(data, splits, split)
    chosen = np.random.default_rng(seed).choice(len(sources), min(crops, len(sources)), replace=False)
    jobs = [(sources[int(i)], int(i), split, out) for i in chosen]
    pool = get_context("fork").Pool(workers) if workers > 1 else None
    done = sorted(pool.imap_unordered(_make_crop_page, jobs, chunksize=8) if pool else map(_make_crop_page, jobs))
    if pool:
        pool.close()
    return done


def load_page(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return z["x"], z["boxes"]


def sample_crop(x: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, size: int = CROP
                ) -> tuple[np.ndarray, np.ndarray]:
    """A size x size crop of a page's input (padded with paper) and its target map; half the time around a
    signature, else anywhere; flipped left-right or up-down at random (ink texture is what tells a signature)."""
    c, h, w = x.shape
    if len(boxes) and rng.random() < 0.5:
        l, t, r, b = boxes[int(rng.integers(0, len(boxes)))]
        cx, cy = rng.uniform(l, r), rng.uniform(t, b)
        left, top = int(cx - rng.uniform(0.2, 0.8) * size), int(cy - rng.uniform(0.2, 0.8) * size)
    else:
        left, top = int(rng.integers(min(0, w - size), max(1, w - size + 1))), int(rng.integers(min(0, h - size), max(1, h - size + 1)))
    left, top = left // STRIDE * STRIDE, top // STRIDE * STRIDE
    crop = np.zeros((c, size, size), x.dtype)
    sl, st = max(0, left), max(0, top)
    sr, sb = min(w, left + size), min(h, top + size)
    if sr > sl and sb > st:
        crop[:, st - top:sb - top, sl - left:sr - left] = x[:, st:sb, sl:sr]
    moved = np.asarray(boxes, np.float64).reshape(-1, 4) - [left, top, left, top]
    target = target_map(np.clip(moved, 0, size), (size, size))
    if rng.random() < 0.5:
        crop, target = crop[:, :, ::-1], target[:, ::-1]
    if rng.random() < 0.2:
        crop, target = crop[:, ::-1, :], target[::-1, :]
    return np.ascontiguousarray(crop), np.ascontiguousarray(target)


# ---------------------------------------------------------------- training


def train(pages_dir: str | Path, out: str | Path, *, steps: int = 3000, batch: int = 16, lr: float = 3e-3,
          width: int = 32, seed: int = 0, resume: bool = False, threads: int | None = None,
          init: str | Path | None = None) -> Path:
    """Adam with a one-cycle schedule on random crops of the training pages; a checkpoint every 200 steps.
    `init`: start from these weights (a run that goes on from an earlier one, with a schedule of its own)."""
    import torch
    from safetensors.torch import save_file

    from .checkpoints import load_training_state, save_training_state

    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    pages: list[tuple[np.ndarray, np.ndarray]] = []

    def add_new_pages() -> None:  # pages still being drawn (`pages` running beside) join as they are written
        ready = {str(p) for p in Path(pages_dir).glob("train_*.npz") if not p.name.endswith(".tmp.npz")}
        for path in sorted(ready - set(paths)):
            try:
                pages.append(load_page(path))
                paths.append(path)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # still being written: next time
                pass

    add_new_pages()
    if not pages:
        raise SystemExit(f"no train_*.npz pages in {pages_dir}")
    log.info("%d training pages", len(pages))
    config = {"pages_dir": str(pages_dir), "init": str(init) if init else None, "steps": steps, "batch": batch, "lr": lr,
              "width": width, "seed": seed, "crop": CROP, "stride": STRIDE}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.manual_seed(seed)
    net = build_net(width)
    if init:
        from safetensors.torch import load_file

        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(init)).items()})
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    start_step = 0
    if resume and (out / "checkpoint.json").is_file():
        meta = load_training_state(out, "checkpoint", net, opt)
        start_step = int(meta["step"])
        sched.load_state_dict(meta["scheduler"])
        sched.total_steps = steps  # a run resumed to go further keeps its schedule's shape up to here
        log.info("resumed at step %d", start_step)
    rng = np.random.default_rng([seed, start_step])
    pos_weight = torch.tensor(2.0)
    net.train()
    t0, running = time.time(), 0.0
    for step in range(start_step, steps):
        xs, ys = zip(*(sample_crop(*pages[int(rng.integers(0, len(pages)))], rng) for _ in range(batch)))
        x = torch.from_numpy(np.stack(xs)).float().div_(255.0)
        y = torch.from_numpy(np.stack(ys))[:, None]
        logits = net(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step > start_step else loss.item()
        if (step + 1) % 50 == 0:
            log.info("step %d/%d loss %.4f (%.2f s/step)", step + 1, steps, running,
                     (time.time() - t0) / (step + 1 - start_step))
        if (step + 1) % 200 == 0 or step + 1 == steps:
            add_new_pages()
            log.info("%d training pages", len(pages))
            save_training_state(out, "checkpoint", net, opt, {"step": step + 1, "scheduler": sched.state_dict()})
    config["pages"] = len(pages)
    weights = out / "locnet.safetensors"
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(weights),
              metadata={"config": json.dumps(config)})
    return weights


def load_net(weights: str | Path):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(weights), "pt") as f:
        config = json.loads((f.metadata() or {}).get("config", "{}"))
    net = build_net(int(config.get("width", 32)))
    net.load_state_dict(load_file(str(weights)))
    net.eval()
    return net, config


def export(weights: str | Path, out: str | Path, *, opset: int = 17) -> Path:
    """The ONNX export (dynamic height and width), checked against torch on a random page-sized input."""
    import torch

    from .export import _has_dynamo_flag
    from .locate import run_onnx

    net, _ = load_net(weights)
    out = Path(out)
    dummy = torch.rand(1, 2, 256, 352)
    kwargs = {"dynamo": False} if _has_dynamo_flag(torch.onnx.export) else {}  # the TorchScript exporter
    torch.onnx.export(net, (dummy,), str(out), opset_version=opset, input_names=["page"], output_names=["logits"],
                      dynamic_axes={"page": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h4", 3: "w4"}}, **kwargs)
    probe = np.random.default_rng(0).random((1, 2, 320, 448)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(probe)).numpy()
    got = run_onnx(out, probe)
    if not np.allclose(want, got, atol=1e-3):
        raise RuntimeError(f"ONNX export differs from torch by {np.abs(want - got).max():.4g}")
    return out


# ---------------------------------------------------------------- threshold and card

THRESHOLDS = np.concatenate([np.round(np.arange(0.30, 0.99, 0.01), 2), [0.99, 0.992, 0.994, 0.996, 0.998, 0.999]])


def page_candidates(net, paths: Sequence[str | Path], region_cuts: Sequence[float] = (0.3,)
                    ) -> dict[float, list[tuple[list[tuple[np.ndarray, float]], np.ndarray]]]:
    """For each region cut: every box the network proposes on each kept page (peaks down to the cut) and the page's
    true boxes. The map is computed once per page."""
    from .locate import heat_boxes, ink_of_input

    out: dict[float, list] = {float(cut): [] for cut in region_cuts}
    for path in paths:
        x, truth = load_page(path)
        heat, ink = net.heat(x), ink_of_input(x)
        for cut in out:
            out[cut].append((heat_boxes(heat, ink, cut, cut), truth))
    return out


def figures_at(candidates, threshold: float) -> dict:
    """Located share (IoU >= 0.5) and false boxes per page when boxes need a peak of at least `threshold`."""
    from .locate import match_boxes

    located = false = signatures = 0
    for found, truth in candidates:
        boxes = np.array([b for b, c in found if c >= threshold]).reshape(-1, 4)
        hit, miss = match_boxes(boxes, truth)
        located, false, signatures = located + hit, false + miss, signatures + len(truth)
    return {"threshold": float(threshold), "located": located / max(signatures, 1), "signatures": signatures,
            "false_per_page": false / max(len(candidates), 1), "pages": len(candidates)}


def choose_threshold(candidates, max_false: float) -> dict:
    """The lowest threshold (most located) whose false boxes per page stay at most `max_false`."""
    for threshold in THRESHOLDS:
        figures = figures_at(candidates, float(threshold))
        if figures["false_per_page"] <= max_false:
            return figures
    return figures_at(candidates, float(THRESHOLDS[-1]))


REGION_CUTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def choose_operating_point(by_cut: dict, max_false: float) -> dict:
    """The region cut and threshold that locate the most with at most `max_false` false boxes per page (ties: fewer
    false boxes, then the lower cut)."""
    best = None
    for cut, candidates in sorted(by_cut.items()):
        figures = {**choose_threshold(candidates, max_false), "region_cut": float(cut)}
        if figures["false_per_page"] > max_false:
            continue
        if best is None or (figures["located"], -figures["false_per_page"]) > (best["located"], -best["false_per_page"]):
            best = figures
    if best is None:  # no cut keeps to max_false: the strictest threshold of the default cut
        cut = min(by_cut)
        best = {**figures_at(by_cut[cut], float(THRESHOLDS[-1])), "region_cut": float(cut)}
    return best


def write_card(weights: str | Path, validation_dir: str | Path, out: str | Path, *, max_false: float = 0.08,
               region_cuts: Sequence[float] = REGION_CUTS) -> dict:
    """Export the network to ONNX beside `out`, choose its threshold and region cut on the validation writers'
    pages, and write the card (`sigml.locate.load_model` reads it), with the weights as fp16 safetensors beside it."""
    from .locate import Locator
    from .modelcard import file_sha256

    out = Path(out)
    onnx = export(weights, out.with_suffix(".onnx"))
    _, config = load_net(weights)
    paths = sorted(str(p) for p in Path(validation_dir).glob("validation_*.npz") if not p.name.endswith(".tmp.npz"))
    if not paths:
        raise SystemExit(f"no validation_*.npz pages in {validation_dir}")
    chosen = choose_operating_point(page_candidates(Locator(onnx, 0.5, {}), paths, region_cuts), max_false)
    net, _ = load_net(weights)
    kept = out.with_suffix(".safetensors")  # the weights that made the ONNX file, fp16 (half the size)
    from safetensors.torch import save_file

    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()},
              str(kept), metadata={"config": json.dumps(config)})
    card = {
        "format": "sigml.locate/net-v1", "onnx": {"file": onnx.name, "sha256": file_sha256(onnx)},
        "threshold": chosen["threshold"], "region_cut": chosen["region_cut"],
        "card": {"trained": config, "validation": chosen, "max_false_per_page": max_false,
                 "pages": "sigml.synthdocs documents: training writers, fonts and backgrounds for training; "
                          "validation writers (training fonts and backgrounds) for the threshold",
                 "weights": {"file": kept.name, "sha256": file_sha256(kept)}},
    }
    out.write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sigml.locate_net", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pages", help="draw synthetic documents and keep their network inputs")
    p.add_argument("--data", required=True)
    p.add_argument("--splits", default="image_pairs")
    p.add_argument("--split", choices=("train", "validation", "test"), required=True)
    p.add_argument("--pages", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crops", type=int, default=0, help="also keep this many real signature crops of the split")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", required=True)
    t = sub.add_parser("train", help="train the network on the kept pages")
    t.add_argument("--pages-dir", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--width", type=int, default=32)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init", help="start from these weights (safetensors)")
    e = sub.add_parser("card", help="export to ONNX, choose the threshold on validation pages, write the card")
    e.add_argument("weights")
    e.add_argument("--validation-pages", required=True, help="folder of validation_*.npz pages")
    e.add_argument("--max-false", type=float, default=0.08, help="false boxes per page allowed at the threshold")
    e.add_argument("--region-cuts", default=",".join(map(str, REGION_CUTS)),
                   help="the region cuts tried with every threshold (comma-separated)")
    e.add_argument("--out", required=True, help="the card, e.g. trained_model_parameters/signature_locator_net.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "pages":
        from .synthdocs import require_fonts

        require_fonts("test" if args.split == "test" else "train")
        seed = args.seed + {"train": 0, "validation": 1, "test": 2}[args.split] * 1000
        make_pages(args.data, args.splits, args.split, args.pages, args.out, seed=seed, workers=args.workers)
        if args.crops:
            make_crop_pages(args.data, args.splits, args.split, args.crops, args.out, seed=seed, workers=args.workers)
    elif args.command == "train":
        print(train(args.pages_dir, args.out, steps=args.steps, batch=args.batch, lr=args.lr, width=args.width,
                    seed=args.seed, resume=args.resume, threads=args.threads, init=args.init))
    else:
        print(json.dumps(write_card(args.weights, args.validation_pages, args.out, max_false=args.max_false,
                                    region_cuts=[float(c) for c in args.region_cuts.split(",")])["card"],
                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
