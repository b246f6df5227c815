"""bench/install_size.py: what it counts as an environment's size and its largest distributions."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def install_size(bench_script):
    return bench_script("install_size")


def test_tree_bytes_counts_files_once_and_not_links(install_size, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"x" * 100)
    (tmp_path / "y.bin").write_bytes(b"y" * 20)
    (tmp_path / "link").symlink_to(tmp_path / "a" / "x.bin")
    assert install_size.tree_bytes(tmp_path) == 120


def test_largest_distributions_merge_a_package_with_its_metadata(install_size, tmp_path):
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "core.so").write_bytes(b"n" * 300)
    (tmp_path / "numpy-2.0.dist-info").mkdir()
    (tmp_path / "numpy-2.0.dist-info" / "RECORD").write_bytes(b"r" * 10)
    (tmp_path / "numpy.libs").mkdir()
    (tmp_path / "numpy.libs" / "libopenblas.so").write_bytes(b"l" * 50)
    (tmp_path / "six.py").write_bytes(b"s" * 5)
    assert install_size.largest_distributions(tmp_path, 2) == [("numpy", 360), ("six.py", 5)]
