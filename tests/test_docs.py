"""The documentation site builds in strict mode: no warnings, no broken links or references."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "api" / "buffers" / "index.html").is_file()


def test_every_docs_page_is_in_the_nav():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)

    def pages(nav):
        for item in nav:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            yield from pages(value) if isinstance(value, list) else [value]

    in_nav = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk == in_nav


ROLE = re.compile(r":(class|func|meth|attr|data|mod|exc|obj):`")


def test_no_docstring_uses_a_role_the_docs_site_cannot_render():
    # mkdocstrings renders Markdown: a Sphinx role such as :class:`X` would show as literal text.
    leaks = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "src" / "pixelrl").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if ROLE.search(line)
    ]
    assert leaks == []


def _doc_value(cell: str) -> object:
    text = cell.strip().strip("`")
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def test_the_reference_documents_every_recipe_as_the_code_declares_it():
    from pixelrl.train.config import RECIPES, resolve_base

    text = (ROOT / "docs" / "cli.md").read_text()
    sections = re.findall(r"`--preset ([\w-]+)` \(run id `([^`]+)`\):\n\n((?:\|.*\n)+)", text)
    assert {name for name, _, _ in sections} == set(RECIPES)
    for name, run_id, table in sections:
        config = resolve_base(name, None)
        assert run_id == config.run_id, name
        for row in table.splitlines()[2:]:
            key, value = (cell.strip() for cell in row.strip("|").split("|")[:2])
            assert getattr(config, key.strip("`")) == _doc_value(value), (name, key)
