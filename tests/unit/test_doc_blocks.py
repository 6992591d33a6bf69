"""The convention for the code blocks of the README and the docs site:
every block is run by a test or marked as not runnable
(tests/support/doc_blocks.py, docs/development.md)."""

import re
import textwrap

import pytest
from doc_blocks import ROOT, all_blocks, read_blocks, run_python


def page(tmp_path, text):
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    return path


def test_every_block_is_run_or_marked():
    blocks, problems = all_blocks()
    assert problems == []
    assert {block.path for block in blocks} >= {"README.md", "docs/index.md"}
    assert sum(block.mode == "run" for block in blocks) >= 5


def test_markers_give_each_block_its_mode(tmp_path):
    path = page(
        tmp_path,
        """\
        ```python
        x = 1
        ```

        <!-- docs-test: slow -->

        ```bash
        python -m pes_rl.train --env swimmer
        ```
        <!-- docs-test: skip (needs a cluster) -->
        ```
        ray start --head
        ```
        """,
    )
    blocks, problems = read_blocks(path, tmp_path)
    assert problems == []
    assert [(b.lang, b.mode, b.line) for b in blocks] == [
        ("python", "run", 1),
        ("bash", "slow", 7),
        ("", "skip", 11),
    ]
    assert blocks[0].code == "x = 1\n"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("```bash\nls\n```\n", "page.md:1: a bash block runs only if marked slow"),
        ("<!-- docs-test: skip -->\n```\nx\n```\n", "unknown marker 'skip'"),
        ("<!-- docs-test: slwo -->\n```python\nx\n```\n", "unknown marker 'slwo'"),
        ("<!-- docs-test: slow -->\n```text\nx\n```\n", "only Python and shell"),
        ("<!-- docs-test: slow -->\n\nSome prose.\n", "page.md:1: marker without"),
    ],
)
def test_what_breaks_the_convention_is_reported(tmp_path, text, problem):
    _, problems = read_blocks(page(tmp_path, text), tmp_path)
    assert len(problems) == 1 and problem in problems[0], problems


def test_a_broken_block_fails_where_the_tests_run_it(tmp_path):
    """The runner the docs tests use lets a block's error through, naming
    the page and line of the block in the traceback."""
    path = page(
        tmp_path,
        """\
        Text.

        ```python
        from pes_rl.agents import PES

        PES(env="swimmer", num_particles=3)
        ```
        """,
    )
    (block,), _ = read_blocks(path, tmp_path)
    with pytest.raises(ValueError, match="num_particles") as caught:
        run_python(block, tmp_path)
    assert any(entry.path == "page.md:3" for entry in caught.traceback)


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings, as Python-Markdown's toc makes them."""
    anchors = set()
    for line in markdown.split("\n"):
        if line.startswith("#"):
            text = line.lstrip("#").strip().replace("`", "")
            text = re.sub(r"[^\w\s-]", "", text).strip().lower()
            anchors.add(re.sub(r"[-\s]+", "-", text))
    return anchors


def test_the_readme_links_to_files_and_headings_that_exist():
    """The README is not part of the site, so mkdocs does not check it."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    broken = []
    for link in links:
        if "://" in link:
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path
        if not target.is_file():
            broken.append(link)
        elif anchor and anchor not in heading_anchors(target.read_text()):
            broken.append(link)
    assert broken == []
    assert sum(link.startswith("docs/") for link in links) > 20
