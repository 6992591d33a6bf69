"""Learning curves: ``python -m pes_rl.plot RUN_DIR [RUN_DIR ...] -o curves.png``.

Runs whose ``config.json`` differ only in the seed are drawn as one line (the
mean over seeds) with a band (min–max or ± one std across seeds).
The grouping and labelling rules are in ``pes_rl.cli.run_groups``.
"""

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pes_rl.cli.run_groups import (  # noqa: F401 (group_runs, Run: API here too)
    BANDS,
    X_AXES,
    Group,
    Run,
    group_runs,
    load_run,
    panel_groups,
)
from pes_rl.cli.run_labels import algo_label, base_label, run_count
from pes_rl.errors import ConfigError

# A legend with more entries, or a longer label, goes outside the axes.
SHORT_LEGEND_ENTRIES = 4
SHORT_LEGEND_CHARS = 28


def _covers_data(ax, legend) -> bool:
    """Whether ``legend`` (drawn inside ``ax``) hides a line, a marker or a
    band, or takes more than a third of the axes."""
    box = legend.get_window_extent().padded(4)
    for line in ax.get_lines():
        path = line.get_transform().transform_path(line.get_path())
        if path.intersects_bbox(box, filled=False):
            return True
    for collection in ax.collections:
        transform = collection.get_transform()
        for path in collection.get_paths():
            if transform.transform_path(path).intersects_bbox(box, filled=True):
                return True
    area = ax.get_window_extent()
    return box.width * box.height > area.width * area.height / 3


def _draw(fig) -> None:
    """Lay out ``fig`` to measure it; a layout still being tried may not fit
    yet, so its warnings are not the final figure's."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.draw_without_rendering()


def _outside_legend(fig, handles, labels, right: bool, **kwargs):
    """A figure legend beside (``right``, if it is not too wide) or below the
    axes; the figure grows by the legend's size so the axes keep theirs."""
    width, height = fig.get_size_inches()
    if right:
        legend = fig.legend(handles, labels, loc="outside right upper", **kwargs)
        _draw(fig)
        legend_width = legend.get_window_extent().width / fig.dpi
        if legend_width <= 0.6 * width:
            fig.set_size_inches(width + legend_width + 0.1, height)
            return legend
        legend.remove()
    # Below: as many columns as fit the figure's width.
    for ncols in range(len(labels), 0, -1):
        legend = fig.legend(
            handles, labels, loc="outside lower center", ncols=ncols, **kwargs
        )
        _draw(fig)
        extent = legend.get_window_extent()
        if extent.width / fig.dpi <= 0.95 * width or ncols == 1:
            break
        legend.remove()
    width = max(width, extent.width / fig.dpi / 0.95)
    fig.set_size_inches(width, height + extent.height / fig.dpi + 0.1)
    return legend


def plot_runs(
    run_dirs: Sequence[str | Path],
    output: str | Path | None = None,
    x: str = "env_steps",
    title: str | None = None,
    band: str = "minmax",
):
    """Draw eval_return against ``x`` for the runs in ``run_dirs`` and save
    the figure to ``output`` (any format matplotlib writes) if given.

    Runs on different environments get one panel (axes) each, titled by the
    environment; ``title`` then goes above all panels.

    Returns the matplotlib ``Figure``. Raises ``ConfigError`` on bad input.
    """
    if not run_dirs:
        raise ConfigError("no run directories given")
    unique = list(dict.fromkeys(Path(p).resolve() for p in run_dirs))
    runs = [load_run(p) for p in unique]
    panels = panel_groups(runs, x, band)
    fig, grid = _panel_grid(len(panels))
    single = len(panels) == 1
    entries = _draw_panels(grid, panels, _line_styles(panels), x, single, title)
    if title and not single:
        fig.suptitle(title)
    handles = [line for line, _ in entries.values()]
    labels = [base + run_count(n) for base, (_, n) in entries.items()]
    legend_style = {
        "title": _legend_title(runs, panels, band),
        "fontsize": "small",
        "title_fontsize": "small",
    }
    if not (single and _inside_legend(fig, grid[0, 0], handles, labels, legend_style)):
        _outside_legend(fig, handles, labels, right=single, **legend_style)
    if output is not None:
        try:
            fig.savefig(output, dpi=150)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot write {output}: {err}") from None
    return fig


def _line_styles(panels) -> dict[str, dict[str, str]]:
    """A colour and dash per label: a label keeps its colour across panels,
    whatever its number of seeds."""
    styles: dict[str, dict[str, str]] = {}
    for group in (g for _, groups in panels for g in groups):
        base = base_label(group.label)
        if base not in styles:
            i = len(styles)
            styles[base] = {
                "color": f"C{i % 10}",
                "linestyle": ("-", "--", ":", "-.")[i // 10 % 4],
            }
    return styles


def _panel_grid(num_panels: int):
    """A figure with a grid of ``num_panels`` axes (spare cells removed)."""
    # Figure without pyplot: no global backend switch and no GUI, so this
    # works headless and does not disturb a user's interactive session.
    from matplotlib.figure import Figure

    ncols = 2 if num_panels == 4 else min(num_panels, 3)
    nrows = math.ceil(num_panels / ncols)
    size = (7, 4.5) if num_panels == 1 else (4.8 * ncols, 3.8 * nrows)
    fig = Figure(figsize=size, layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    for ax in grid.ravel()[num_panels:]:
        fig.delaxes(ax)
    return fig, grid


def _draw_panels(grid, panels, styles, x: str, single: bool, title: str | None):
    """Each panel's lines and bands; the legend entries, one per label with
    its number of seeds over all panels: {label: (line, [suffixes])}."""
    entries: dict[str, tuple[Any, list[str]]] = {}
    for ax, (env, groups) in zip(grid.ravel(), panels, strict=False):
        for group in groups:
            base = base_label(group.label)
            style = styles[base]
            marker = "o" if group.x.size < 30 else None
            (line,) = ax.plot(
                group.x, group.mean, marker=marker, ms=3, label=group.label, **style
            )
            entries.setdefault(base, (line, []))[1].append(group.label[len(base) :])
            if len(group.runs) > 1:
                ax.fill_between(
                    group.x, group.low, group.high, color=style["color"], alpha=0.2
                )
        ax.set_xlabel(X_AXES[x])
        ax.grid(alpha=0.3)
        if single and title is not None:
            ax.set_title(title)
        elif env is not None or not single:
            ax.set_title(env or "no config.json")
    for ax in grid[:, 0]:
        ax.set_ylabel("evaluation return (mean policy)")
    return entries


def _legend_title(runs, panels, band: str) -> str | None:
    """What the labels leave out: the one algorithm all lines share, and
    what line and band mean when some line has several seeds."""
    titles = []
    algos = {r.config.get("algo") for r in runs if r.config is not None}
    if len(algos) == 1 and any(len(groups) > 1 for _, groups in panels):
        algo = algos.pop()
        if algo is not None:
            titles.append(algo_label(algo))
    if any(len(g.runs) > 1 for _, groups in panels for g in groups):
        titles.append(f"line: mean over seeds, band: {BANDS[band]}")
    return "\n".join(titles) or None


def _inside_legend(fig, ax, handles, labels, legend_style) -> bool:
    """A short legend inside the single panel, where it hides no data;
    False (and no legend) when it is too long or would hide some."""
    if len(labels) > SHORT_LEGEND_ENTRIES or max(map(len, labels)) > SHORT_LEGEND_CHARS:
        return False
    legend = ax.legend(handles, labels, loc="best", **legend_style)
    _draw(fig)
    if _covers_data(ax, legend):
        legend.remove()
        return False
    # Where it was checked: "best" would search again on saving.
    corner = legend.get_window_extent().transformed(ax.transAxes.inverted())
    legend.set_loc((corner.x0, corner.y0))
    return True


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, exit status 2 (through main), instead of usage + message.
        raise ConfigError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m pes_rl.plot",
        description="Plot evaluation return curves of training runs. Runs whose "
        "config.json differs only in the seed are drawn as one line (mean over "
        "seeds) with a band; lines are labelled by the fewest config keys that "
        "tell them apart. Runs on different environments get one panel each.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument(
        "-o", "--output", required=True, help="image file to write, e.g. curves.png"
    )
    parser.add_argument(
        "--x",
        choices=tuple(X_AXES),
        default="env_steps",
        help="x axis (default: env_steps)",
    )
    parser.add_argument(
        "--band",
        choices=tuple(BANDS),
        default="minmax",
        help="spread across seeds: min-max or mean ± 1 std (default: minmax)",
    )
    parser.add_argument("--title", help="figure title (default: the environment)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        fig = plot_runs(
            args.run_dirs, args.output, x=args.x, title=args.title, band=args.band
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lines = sum(len(ax.get_lines()) for ax in fig.axes)
    runs = len(dict.fromkeys(Path(p).resolve() for p in args.run_dirs))
    panels = f" in {len(fig.axes)} panels" if len(fig.axes) > 1 else ""
    print(f"wrote {args.output} ({runs} runs, {lines} lines{panels})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
