"""sigml.cache: preprocessed images on disk, keyed by the preprocessing config and the files."""

from __future__ import annotations

import os

import pytest

from sigml.cache import cache_key, cached_preprocess
from sigml.datasets import read_dataset
from sigml.preprocessing import PreprocessConfig


@pytest.fixture
def dataset(make_generic_dataset):
    root = make_generic_dataset("CACHE", writers=2, genuine=2, forged=1)
    return root, read_dataset(root, "generic", "CACHE")


def test_key_follows_the_config_and_the_files(dataset):
    root, records = dataset
    roots = {"CACHE": root}
    key = cache_key(records, roots, PreprocessConfig())
    assert key == cache_key(records, roots, PreprocessConfig())
    assert key != cache_key(records, roots, PreprocessConfig(ink="gray"))
    assert key != cache_key(records[:-1], roots, PreprocessConfig())
    path = root / records[0].path
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was replaced
    assert key != cache_key(records, roots, PreprocessConfig())


def test_second_call_reads_the_cache_and_a_changed_config_makes_a_new_one(dataset, tmp_path, monkeypatch):
    import sigml.cache

    root, records = dataset
    roots = {"CACHE": root}
    pixels, kept = cached_preprocess(records, roots, PreprocessConfig(), tmp_path, name="CACHE", progress=False)
    assert pixels.shape == (len(records), 1, 150, 220) and kept == records
    calls = []
    real = sigml.cache.preprocess_records
    monkeypatch.setattr(sigml.cache, "preprocess_records", lambda *a, **k: calls.append(1) or real(*a, **k))
    again, kept_again = cached_preprocess(records, roots, PreprocessConfig(), tmp_path, name="CACHE", progress=False)
    assert calls == [] and (again == pixels).all() and kept_again == records
    cached_preprocess(records, roots, PreprocessConfig(canvas_height=75, canvas_width=110), tmp_path, name="CACHE",
                      progress=False)
    assert calls == [1] and len(list(tmp_path.glob("CACHE-*.safetensors"))) == 2


def test_unreadable_images_are_remembered_as_left_out(dataset, tmp_path):
    root, records = dataset
    (root / records[1].path).write_bytes(b"not an image")
    pixels, kept = cached_preprocess(records, {"CACHE": root}, PreprocessConfig(), tmp_path, name="CACHE", progress=False)
    assert kept == records[:1] + records[2:] and len(pixels) == len(records) - 1
    again, kept_again = cached_preprocess(records, {"CACHE": root}, PreprocessConfig(), tmp_path, name="CACHE", progress=False)
    assert kept_again == kept and len(again) == len(pixels)


def test_a_corrupt_cache_file_is_made_anew(dataset, tmp_path):
    root, records = dataset
    cached_preprocess(records, {"CACHE": root}, PreprocessConfig(), tmp_path, name="CACHE", progress=False)
    (cache_file,) = tmp_path.glob("CACHE-*.safetensors")
    cache_file.write_bytes(b"garbage")
    pixels, kept = cached_preprocess(records, {"CACHE": root}, PreprocessConfig(), tmp_path, name="CACHE", progress=False)
    assert kept == records and len(pixels) == len(records)
