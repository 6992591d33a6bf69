"""The documentation site builds with ``mkdocs build --strict``, and every
image its pages show is in the built site."""

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra (in .[dev])")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return out


def images(site: Path) -> dict[Path, list[str]]:
    """Each HTML page's image sources that point into the site."""
    shown = {}
    for html in sorted(site.rglob("*.html")):
        sources = [
            src for src in IMAGE.findall(html.read_text()) if not urlparse(src).scheme
        ]
        if sources:
            shown[html] = sources
    return shown


def test_every_image_a_page_shows_is_in_the_site(site):
    shown = images(site)
    missing = []
    for html, sources in shown.items():
        page = html.relative_to(site).as_posix()
        for src in sources:
            target = unquote(urlparse(urljoin(page, src)).path)
            if not (site / target).is_file():
                missing.append(f"{page}: {src}")
    assert missing == []
    # The results pages show the experiments' figures.
    figures = {Path(src).name for sources in shown.values() for src in sources}
    assert {"swimmer_paper_steps.png", "variance.png", "halfcheetah.png"} <= figures


def test_the_checker_sees_a_missing_image(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<p><img alt="x" src="../f.png" /></p>')
    assert images(tmp_path) == {tmp_path / "a" / "index.html": ["../f.png"]}
    assert not (tmp_path / "f.png").exists()


def test_formulas_are_mathml_in_the_built_pages(site):
    pages = {
        p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")
    }
    left_as_tex = [page for page, text in pages.items() if 'class="arithmatex"' in text]
    assert left_as_tex == []
    assert pages["concepts/index.html"].count("<math") >= 10
