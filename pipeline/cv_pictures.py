"""The cross-validation's pictures (metrics/cv/), one question each, written once per run by crossval.write_results
(so `crossval --merge` writes them too) and linked from metrics/cv/report.md, each beside a table of its numbers:

    uar_by_mode.png         pooled UAR of every system per way of meeting a speaker, with its 95 % interval
    uar_per_fold.png        the headline system's UAR per test fold (per test speaker group) and seed: the spread
    uar_by_corpus.png       pooled UAR per corpus, one panel per way (only when several corpora are present)
    confusion_by_mode.png   the headline system's confusion matrix, one panel per way of meeting a speaker

No number is printed over a bar or a line (the tables carry them), so nothing can overlap; every system has one
colour in every picture (pipeline.plotstyle). The figure functions return the matplotlib Figure, for the tests
to read its structure; write_pictures saves them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import plotstyle

PICTURES = {"uar_by_mode": "uar_by_mode.png", "uar_per_fold": "uar_per_fold.png",
            "uar_by_corpus": "uar_by_corpus.png", "confusion_by_mode": "confusion_by_mode.png"}
UAR_AXIS = (0.0, 1.0)


def _systems(summary: dict) -> list[str]:
    """Systems in the pictures' order: the model, its branches, the baseline last."""
    systems = list(summary)
    return ([s for s in systems if s != plotstyle.BASELINE]
            + [s for s in systems if s == plotstyle.BASELINE])


def _modes(summary: dict) -> list[str]:
    return plotstyle.mode_order(m for modes in summary.values() for m in modes)


def _bar_slots(present: list[str], systems: list[str], width: float) -> dict[str, float]:
    """x offsets of the bars of one group: the systems present side by side, centred on the group."""
    mine = [s for s in systems if s in present]
    return {s: (i - (len(mine) - 1) / 2) * width for i, s in enumerate(mine)}


def _legend_below(ax) -> None:
    """One legend under the axes (below the x label), one entry per system, out of the way of every bar."""
    entries = list(zip(*ax.get_legend_handles_labels()))
    entries.sort(key=lambda e: e[1].startswith("chance"))  # the systems first, the chance line last
    handles, labels = zip(*entries)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(5, len(labels)),
              fontsize=8, frameon=False)


def uar_by_mode(summary: dict, colours: dict[str, str], chance: float | None = None):
    """Grouped bars: per way of meeting a speaker (x), the pooled UAR of each system with its 95 % interval."""
    plt = plotstyle.pyplot()
    systems, modes = _systems(summary), _modes(summary)
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(6.5, 1.5 * len(modes) + 2.5), 4.2))
    seen: set[str] = set()
    for x, mode in enumerate(modes):
        present = [s for s in systems if mode in summary[s]]
        for system, offset in _bar_slots(present, systems, width).items():
            h = summary[system][mode]["headline"]
            lo, hi = h["uar_pooled_ci95"]
            uar = h["uar_pooled"]
            bars = ax.bar(x + offset, uar, width * 0.92, color=colours[system], edgecolor="white",
                          label=system if system not in seen else "_nolegend_",
                          yerr=[[max(0.0, uar - lo)], [max(0.0, hi - uar)]], capsize=3,
                          error_kw={"elinewidth": 1.0, "ecolor": "#333333"})
            bars.patches[0].set_gid(f"{system}|{mode}")
            seen.add(system)
    if chance:
        ax.axhline(chance, color="#444444", lw=1.0, ls="--", label=f"chance ({chance:.3f})")
    ax.set_xticks(range(len(modes)), [plotstyle.mode_label(m) for m in modes], fontsize=8)
    ax.set_xlabel("way of meeting the test speaker")
    ax.set_ylabel("UAR, pooled over the test folds\n(bar: 95 % interval, speakers resampled)")
    ax.set_ylim(*UAR_AXIS)
    ax.set_xlim(-0.6, len(modes) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Which system, met which way: pooled UAR per way of meeting a speaker", fontsize=10)
    _legend_below(ax)
    return fig


def uar_per_fold(folds: pd.DataFrame, system: str, colour: str):
    """The headline system's per-fold UAR per way of meeting a speaker: a box over the (fold, seed) runs and one
    dot per run, its mean a white diamond. One system, so its spread reads without a legend of 15 series."""
    plt = plotstyle.pyplot()
    mine = folds[folds["system"] == system]
    modes = plotstyle.mode_order(mine["mode"])
    data = [mine.loc[mine["mode"] == m, "uar"].to_numpy(dtype=float) for m in modes]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.4 * len(modes) + 2.5), 4.2))
    box = ax.boxplot(data, positions=range(len(modes)), widths=0.5, showfliers=False, patch_artist=True,
                     medianprops={"color": "#222222"}, whiskerprops={"color": colour},
                     capprops={"color": colour})
    for patch in box["boxes"]:
        patch.set(facecolor=colour, alpha=0.25, edgecolor=colour)
    rng = np.random.default_rng(0)  # the jitter only spreads the dots sideways; the same picture every run
    for x, (mode, values) in enumerate(zip(modes, data)):
        dots = ax.scatter(x + rng.uniform(-0.12, 0.12, len(values)), values, s=18, color=colour, zorder=3,
                          edgecolor="white", linewidth=0.5, label=f"one test fold x seed" if x == 0 else "_nolegend_")
        dots.set_gid(f"{system}|{mode}")
        ax.scatter([x], [values.mean()], marker="D", s=36, color="white", edgecolor="#222222", zorder=4,
                   label="mean" if x == 0 else "_nolegend_")
    k, s = mine["fold"].nunique(), mine["seed"].nunique()
    ax.set_xticks(range(len(modes)), [plotstyle.mode_label(m) for m in modes], fontsize=8)
    ax.set_xlim(-0.6, len(modes) - 0.4)
    ax.set_xlabel("way of meeting the test speaker")
    ax.set_ylabel("UAR of one test fold")
    ax.set_ylim(UAR_AXIS[0], UAR_AXIS[1] + 0.03)  # a fold at 1.0 is a whole dot
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(f"How much {system} moves from speaker to speaker: {k} folds x {s} seed{'s' * (s > 1)}",
                 fontsize=10)
    _legend_below(ax)
    return fig


def corpora_of(summary: dict) -> list[str]:
    return list(dict.fromkeys(c for modes in summary.values() for e in modes.values()
                              for c in e["breakdown"]["corpus"]))


def uar_by_corpus(summary: dict, colours: dict[str, str]):
    """Pooled UAR per corpus (x) of each system, one panel per way of meeting a speaker; None with one corpus."""
    corpora = corpora_of(summary)
    if len(corpora) < 2:
        return None
    plt = plotstyle.pyplot()
    systems, modes = _systems(summary), _modes(summary)
    width = 0.8 / max(1, len(systems))
    cols = min(3, len(modes))
    rows = -(-len(modes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4.0, 0.9 * len(corpora) + 1.5) * cols, 3.2 * rows),
                             sharey=True, squeeze=False)
    handles: dict[str, object] = {}
    for ax, mode in zip(axes.flat, modes):
        present = [s for s in systems if mode in summary[s]]
        for system, offset in _bar_slots(present, systems, width).items():
            per_corpus = summary[system][mode]["breakdown"]["corpus"]
            for x, corpus in enumerate(corpora):
                if corpus not in per_corpus:
                    continue
                bars = ax.bar(x + offset, per_corpus[corpus], width * 0.92, color=colours[system], edgecolor="white",
                              label=system)
                bars.patches[0].set_gid(f"{system}|{mode}|{corpus}")
                handles.setdefault(system, bars)
        ax.set_xticks(range(len(corpora)), corpora, fontsize=8)
        ax.set_title(plotstyle.mode_label(mode, one_line=True), fontsize=9)
        ax.set_xlabel("corpus")
        ax.set_ylim(*UAR_AXIS)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in axes[:, 0]:
        ax.set_ylabel("UAR, pooled")
    for ax in list(axes.flat)[len(modes):]:
        ax.set_visible(False)
    fig.suptitle("Which corpus is harder: pooled UAR per corpus", fontsize=10, y=1.0)
    fig.tight_layout()
    fig.legend(list(handles.values()), list(handles), loc="lower center", bbox_to_anchor=(0.5, 1.02),
               ncol=min(3, len(handles)), fontsize=8, frameon=False)
    return fig


def confusion_by_mode(summary: dict, system: str, labels: list[str]):
    """The headline system's confusion matrix per way of meeting a speaker: rows the actual emotion, each row
    as shares of its files (counts summed over folds and seeds); the cell text is the share in %."""
    plt = plotstyle.pyplot()
    modes = plotstyle.mode_order(summary[system])
    cols = min(3, len(modes))
    rows = -(-len(modes) // cols)
    side = 0.42 * len(labels) + 1.2
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols + 1.0, side * rows + 0.6), squeeze=False)
    image = None
    for ax, mode in zip(axes.flat, modes):
        entry = summary[system][mode]
        cm = np.asarray(entry["breakdown"]["confusion_matrix"], dtype=float)
        share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{share[i, j]:.0%}", ha="center", va="center", fontsize=6.5,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_title(f"{plotstyle.mode_label(mode, one_line=True)}\nUAR {entry['headline']['uar_pooled']:.3f}",
                     fontsize=8)
        ax.set_gid(f"{system}|{mode}")
    for ax in axes[:, 0]:
        ax.set_ylabel("actual", fontsize=8)
    for ax in list(axes.flat)[len(modes):]:
        ax.set_visible(False)
    fig.suptitle(f"{system}: what is taken for what, per way of meeting a speaker (share of each actual emotion)",
                 fontsize=10)
    fig.tight_layout()
    bar = fig.colorbar(image, ax=list(axes.flat), shrink=0.6, pad=0.02)
    bar.set_label("share of the actual emotion's files")
    return fig


def write_pictures(summary: dict, folds: pd.DataFrame, labels: list[str], model: str, cv_dir: Path) -> list[str]:
    """Every picture of the cross-validation into cv_dir; -> the file names written (report.md links them).
    A picture of an earlier run that this one does not make (uar_by_corpus with one corpus) is removed."""
    colours = plotstyle.system_colours(_systems(summary))
    figures = {"uar_by_mode": uar_by_mode(summary, colours, chance=1.0 / len(labels) if labels else None),
               "uar_per_fold": uar_per_fold(folds, model, colours[model]),
               "uar_by_corpus": uar_by_corpus(summary, colours),
               "confusion_by_mode": confusion_by_mode(summary, model, labels)}
    written = []
    for key, fig in figures.items():
        path = Path(cv_dir) / PICTURES[key]
        if fig is None:
            path.unlink(missing_ok=True)
            continue
        plotstyle.save(fig, path)
        written.append(PICTURES[key])
    return written


# ------------------------------------------------------------------------------------------------ tables

def _fmt_ci(h: dict) -> str:
    lo, hi = h["uar_pooled_ci95"]
    return f"**{h['uar_pooled']:.3f}** [{lo:.2f}, {hi:.2f}]"


def uar_by_mode_table(summary: dict) -> list[str]:
    """The numbers of uar_by_mode.png: a row per system, a column per way, pooled UAR [95 % interval]."""
    systems, modes = _systems(summary), _modes(summary)
    lines = ["| system | " + " | ".join(plotstyle.mode_label(m, one_line=True) for m in modes) + " |",
             "|---|" + "---|" * len(modes)]
    for system in systems:
        lines.append(f"| {system} | " + " | ".join(_fmt_ci(summary[system][m]["headline"]) if m in summary[system]
                                                   else "" for m in modes) + " |")
    return lines


def uar_per_fold_table(folds: pd.DataFrame, system: str) -> list[str]:
    """The numbers of uar_per_fold.png: per way, mean ± std over the runs and the weakest and strongest test
    fold with its speakers."""
    mine = folds[folds["system"] == system]
    lines = ["| way | mean ± std | weakest fold (test speakers) | strongest fold (test speakers) |",
             "|---|---|---|---|"]
    for mode in plotstyle.mode_order(mine["mode"]):
        runs = mine[mine["mode"] == mode]
        by_fold = runs.groupby("fold").agg(uar=("uar", "mean"), speakers=("test_speakers", "first"))
        lo, hi = by_fold["uar"].idxmin(), by_fold["uar"].idxmax()
        lines.append(f"| {plotstyle.mode_label(mode, one_line=True)} | {runs['uar'].mean():.3f} ± "
                     f"{runs['uar'].std(ddof=0):.3f} | {by_fold.loc[lo, 'uar']:.3f} (fold {lo}: "
                     f"{by_fold.loc[lo, 'speakers']}) | {by_fold.loc[hi, 'uar']:.3f} (fold {hi}: "
                     f"{by_fold.loc[hi, 'speakers']}) |")
    return lines


def uar_by_corpus_table(summary: dict) -> list[str]:
    corpora = corpora_of(summary)
    lines = ["| system | way | " + " | ".join(corpora) + " |", "|---|---|" + "---|" * len(corpora)]
    for system in _systems(summary):
        for mode in plotstyle.mode_order(summary[system]):
            per = summary[system][mode]["breakdown"]["corpus"]
            lines.append(f"| {system} | {plotstyle.mode_label(mode, one_line=True)} | "
                         + " | ".join(f"{per[c]:.3f}" if c in per else "" for c in corpora) + " |")
    return lines


def confident_errors(pred: pd.DataFrame, system: str, mode: str = "cold", n: int = 10) -> pd.DataFrame:
    """The n most confident wrong predictions of a system met one way (cold: one file of a stranger), out of
    predictions.csv's probability columns: file (the recording's name), speaker, actual, predicted, confidence
    (the probability of the predicted class), fold and seed. Empty where the system has no probabilities (the
    baseline)."""
    mine = pred[(pred["system"] == system) & (pred["mode"] == mode) & (pred["actual"] != pred["predicted"])]
    prob_columns = [c for c in pred.columns if c.startswith("p_")]
    columns = ["file", "speaker", "actual", "predicted", "confidence", "fold", "seed"]
    if mine.empty or not prob_columns:
        return pd.DataFrame(columns=columns)
    probs = mine[prob_columns].to_numpy(dtype=float)
    if np.isnan(probs).all():
        return pd.DataFrame(columns=columns)
    confidence = np.nanmax(probs, axis=1)
    # the recording a person can listen to (the source file's name), else the rendered clip's name
    files = [Path(p).name if isinstance(p, str) and p else name
             for p, name in zip(mine.get("path", pd.Series([None] * len(mine), index=mine.index)), mine["name"])]
    out = mine.assign(confidence=np.round(confidence, 3), file=files)
    return out.sort_values(["confidence", "file"], ascending=[False, True]).head(n)[columns].reset_index(drop=True)


def confident_errors_table(errors: pd.DataFrame) -> list[str]:
    lines = ["| file | speaker | actual | predicted | confidence | fold | seed |", "|---|---|---|---|---|---|---|"]
    lines += [f"| `{r.file}` | {r.speaker} | {r.actual} | **{r.predicted}** | {r.confidence:.3f} | {r.fold} | "
              f"{r.seed} |" for r in errors.itertuples()]
    return lines
