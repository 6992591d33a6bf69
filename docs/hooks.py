"""mkdocs hooks: the figures of ``experiments/results/`` go with the site,
and formulas become MathML.

The experiments write their figures there, and the pages link them as
GitHub resolves links, e.g. ``../../experiments/results/variance.png``
from ``docs/results/variance.md``. The hook adds each figure to the site
at ``experiments/results/NAME.png`` and rewrites exactly that prefix to the
page's path within the site; any other path to a figure stays as written,
so ``mkdocs build --strict`` reports it.

Formulas (pymdownx.arithmatex's generic output, ``\\( \\)`` and ``\\[ \\]``)
are converted to MathML at build time, which browsers render without a
script or a CDN; one that cannot be converted fails the build.
"""

import html
import re
from pathlib import Path

from latex2mathml.converter import convert
from mkdocs.exceptions import PluginError
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


FORMULA = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.S)


def on_page_content(content, page, config, files):
    def mathml(match: re.Match) -> str:
        tex = html.unescape(match.group(2)).strip()[2:-2]  # drop \( \) or \[ \]
        display = "block" if match.group(1) == "div" else "inline"
        try:
            return convert(tex, display=display)
        except Exception as err:  # latex2mathml raises several types
            raise PluginError(f"{page.file.src_uri}: formula {tex!r}: {err}") from err

    return FORMULA.sub(mathml, content)
