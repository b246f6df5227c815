"""The README and docs cannot drift from the results and the tree they describe.

Every table between `<!-- NAME:begin (bench/readme_results.py) -->` markers (the README's headline table, the tables
of docs/results.md) must be what bench/readme_results.py renders from the committed JSON under docs/results/; the
README stays short and its layout map names every ML-core module, shipped model and script; relative links in the
README and docs/ point at files that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def readme_results(bench_script):
    return bench_script("readme_results")


def test_every_generated_table_matches_its_json(readme_results, repo_root):
    assert readme_results.stale_blocks(repo_root) == [], "run .venv/bin/python bench/readme_results.py"


def test_the_readme_headline_table_is_the_committed_benchmark(readme_results, repo_root):
    readme = (repo_root / "README.md").read_text()
    table = readme_results.render(repo_root / "docs" / "results" / "benchmark.json")
    assert readme_results.replace_block(readme, table) == readme
    assert table.count("\n| ") >= 8 and "**macro (6 datasets)**" in table  # rule, six datasets, the macro row


def test_a_changed_figure_is_caught(readme_results, repo_root, tmp_path):
    """The check is not vacuous: one figure edited by hand in a copy of the README makes its block stale."""
    (tmp_path / "docs").mkdir()
    readme = (repo_root / "README.md").read_text()
    begin = readme.index(readme_results.BEGIN)
    edited = readme[:begin] + readme[begin:].replace("| CEDAR | 10 |", "| CEDAR | 11 |", 1)
    assert edited != readme
    (tmp_path / "README.md").write_text(edited)
    readme_block = [b for b in readme_results.BLOCKS if b.page == "README.md"]
    assert readme_results.stale_blocks(tmp_path, readme_block) == ["README.md: results-table"]


def test_readme_is_short(repo_root):
    assert len((repo_root / "README.md").read_bytes()) < 10_000


def test_readme_layout_names_every_module_model_and_script(repo_root):
    readme = (repo_root / "README.md").read_text()
    modules = [p.name for p in (repo_root / "backend" / "sigml").glob("*.py") if not p.name.startswith("__")]
    models = sorted({p.name.split(".")[0] for p in (repo_root / "trained_model_parameters").iterdir()
                     if p.suffix in (".safetensors", ".json")})
    scripts = [p.name for p in (repo_root / "scripts").glob("*.sh")]
    missing = [name for name in modules + scripts if name not in readme]
    missing += [f"{stem}.*" for stem in models if f"{stem}.*" not in readme]
    assert not missing, f"README.md's layout map does not name {missing}"


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", ["README.md", "docs", "interface/README.md", "notebooks/README.md"])
def test_relative_links_point_at_files(repo_root, page):
    path = repo_root / page
    pages = sorted(path.glob("*.md")) if path.is_dir() else [path]
    broken = []
    for md in pages:
        for target in LINK.findall(md.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(repo_root)} -> {target}")
    assert not broken, broken
