"""mkdocs hook: the figures of ``experiments/results/`` go with the site.

The experiments write their figures there, and the pages link them as
GitHub resolves links, e.g. ``../../experiments/results/variance.png``
from ``docs/results/variance.md``. The hook adds each figure to the site
at ``experiments/results/NAME.png`` and rewrites exactly that prefix to the
page's path within the site; any other path to a figure stays as written,
so ``mkdocs build --strict`` reports it.
"""

from pathlib import Path

from mkdocs.structure.files import File

FIGURES = "experiments/results"


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for figure in sorted((root / FIGURES).glob("*.png")):
        uri = f"{FIGURES}/{figure.name}"
        files.append(File.generated(config, uri, abs_src_path=str(figure)))
    return files


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")
    on_github = "../" * (depth + 1) + FIGURES + "/"
    in_site = "../" * depth + FIGURES + "/"
    return markdown.replace(f"]({on_github}", f"]({in_site}")
