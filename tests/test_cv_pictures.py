"""The cross-validation's pictures (pipeline/cv_pictures) by their structure, not their pixels: written by
crossval.write_results and linked from report.md, a bar for every system x way of meeting a speaker, one legend
entry per system, one colour per system in every picture (the baseline grey), labelled axes, no number drawn over
another (the numbers are in the report's tables), per-corpus bars only with several corpora, and the cold path's
most confident mistakes. A fabricated run of a fusion, its two branches and the baseline: no training, seconds."""
from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import crossval, cv_pictures, plotstyle

LABELS = ["angry", "happy", "sad", "neutral"]
SYSTEMS = {"fusion": 0.85, "cnn_pooled (fusion branch)": 0.7, "functionals (fusion branch)": 0.75,
           crossval.BASELINE_SYSTEM: 0.6}  # how often each is right
MODES = ("transductive", "enrolled10", "enrolled5", "enrolled_neutral", "cold")
FOLDS = 4


def fabricated_run(corpora=("emodb", "ravdess"), seeds=(1, 2)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """folds.csv and predictions.csv of a cross-validation: per fold one speaker of each corpus, 8 clips each,
    every system in every mode (the baseline: cold and transductive, seed 0, no probabilities)."""
    rng = np.random.default_rng(0)
    folds, preds = [], []
    for system, right in SYSTEMS.items():
        baseline = system == crossval.BASELINE_SYSTEM
        for mode, fold, seed in itertools.product(MODES, range(FOLDS), seeds):
            if baseline and (mode not in ("cold", "transductive") or seed != seeds[0]):
                continue
            seed = 0 if baseline else seed
            speakers = [f"{c}:s{fold}" for c in corpora]
            actual = np.array([LABELS[i % len(LABELS)] for i in range(8 * len(speakers))])
            ok = rng.random(len(actual)) < right - (0.1 if mode == "cold" else 0.0)
            predicted = np.where(ok, actual, np.roll(actual, 1))
            frame = pd.DataFrame({"system": system, "mode": mode, "fold": fold, "seed": seed,
                                  "corpus": np.repeat(corpora, 8), "speaker": np.repeat(speakers, 8),
                                  "gender": "f", "name": [f"X_{a}_{fold}_{i}.png" for i, a in enumerate(actual)],
                                  "path": [f"/corpus/wav/{fold}_{i}.wav" for i in range(len(actual))],
                                  "actual": actual, "predicted": predicted})
            if not baseline:
                probs = rng.dirichlet(np.ones(len(LABELS)), len(actual)) * 0.5
                probs[np.arange(len(actual)), [LABELS.index(p) for p in predicted]] += 0.5
                for j, lab in enumerate(LABELS):
                    frame[f"p_{lab}"] = probs[:, j]
            preds.append(frame)
            m = crossval._metrics(actual, predicted, LABELS)
            folds.append({"system": system, "mode": mode, "fold": fold, "seed": seed,
                          "test_speakers": " ".join(speakers), "files": len(actual),
                          **{h: round(m[h], 4) for h in crossval.HEADLINE}, "val_uar": np.nan, "epochs": 3,
                          "seconds": 1.0})
    return pd.DataFrame(folds), pd.concat(preds, ignore_index=True)


def write_run(out, **kw) -> dict:
    from tests.conftest import REPO

    folds, pred = fabricated_run(**kw)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    crossval.write_results(folds, pred, None, LABELS, [], {"total": 1.0}, params, "fusion", out / "cv.json", out)
    return {"folds": folds, "pred": pred, "summary": crossval.summarise(pred, folds, LABELS)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cv")
    return dict(write_run(out), out=out)


@pytest.fixture(scope="module")
def figures(run):
    summary, folds = run["summary"], run["folds"]
    colours = plotstyle.system_colours(list(summary))
    figs = {"uar_by_mode": cv_pictures.uar_by_mode(summary, colours, chance=0.25),
            "uar_per_fold": cv_pictures.uar_per_fold(folds, "fusion", colours["fusion"]),
            "uar_by_corpus": cv_pictures.uar_by_corpus(summary, colours),
            "confusion_by_mode": cv_pictures.confusion_by_mode(summary, "fusion", LABELS)}
    yield figs
    for fig in figs.values():
        plotstyle.pyplot().close(fig)


def _patches_by_gid(fig) -> dict:
    return {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_pictures_are_written_and_linked_from_the_report(run):
    out = run["out"]
    report = (out / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(linked) == sorted(cv_pictures.PICTURES.values())
    for name in linked:
        assert (out / name).stat().st_size > 5000 and (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "folds.png").exists() and "folds.png" not in report


def test_a_bar_for_every_system_and_way_with_its_interval(figures, run):
    summary = run["summary"]
    bars = _patches_by_gid(figures["uar_by_mode"])
    assert set(bars) == {f"{s}|{m}" for s, modes in summary.items() for m in modes}
    assert len(bars) == 3 * len(MODES) + 2  # the baseline meets speakers two ways
    for gid, bar in bars.items():
        system, mode = gid.split("|")
        assert bar.get_height() == pytest.approx(summary[system][mode]["headline"]["uar_pooled"])
    # one error bar per bar: the 95 % interval
    ax = figures["uar_by_mode"].axes[0]
    assert len([c for c in ax.containers if getattr(c, "has_yerr", False)]) == len(bars)


def test_legend_has_one_entry_per_system(figures, run):
    for key in ("uar_by_mode", "uar_by_corpus"):
        fig = figures[key]
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
        assert len(legends) == 1, key
        texts = [t.get_text() for t in legends[0].get_texts()]
        assert len(texts) == len(set(texts)), texts
        assert set(SYSTEMS) <= set(texts) and len([t for t in texts if t in SYSTEMS]) == len(SYSTEMS)


def test_each_system_has_one_colour_in_every_picture(figures):
    from matplotlib.colors import to_hex

    seen: dict[str, set] = {}
    for key in ("uar_by_mode", "uar_by_corpus"):
        for gid, patch in _patches_by_gid(figures[key]).items():
            seen.setdefault(gid.split("|")[0], set()).add(to_hex(patch.get_facecolor(), keep_alpha=False))
    for ax in figures["uar_per_fold"].axes:
        for coll in ax.collections:
            if coll.get_gid():
                seen.setdefault(coll.get_gid().split("|")[0], set()).update(
                    to_hex(c, keep_alpha=False) for c in coll.get_facecolors())
    assert set(seen) == set(SYSTEMS)
    assert all(len(colours) == 1 for colours in seen.values()), seen
    colour = {s: next(iter(c)) for s, c in seen.items()}
    assert len(set(colour.values())) == len(SYSTEMS)  # no two systems alike
    assert colour[crossval.BASELINE_SYSTEM] == plotstyle.BASELINE_GREY
    assert colour["functionals (fusion branch)"] == plotstyle.SYSTEM_COLOURS["functionals"]


def test_system_colours_are_fixed_and_distinct():
    a = plotstyle.system_colours(["cnn_blstm", "cnn_blstm (fusion branch)", "mlp", crossval.BASELINE_SYSTEM])
    b = plotstyle.system_colours(["mlp", "cnn_blstm"])
    assert a["cnn_blstm"] == a["cnn_blstm (fusion branch)"] == b["cnn_blstm"] and a["mlp"] == b["mlp"]
    assert len({a["cnn_blstm"], a["mlp"], a[crossval.BASELINE_SYSTEM]}) == 3


def test_every_axes_is_labelled(figures):
    for key, fig in figures.items():
        visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        assert visible, key
        for ax in visible:
            assert ax.get_xlabel(), key
            assert ax.get_title(), key
        assert any(ax.get_ylabel() for ax in visible), key
    uar_axes = figures["uar_by_mode"].axes[0]
    assert "UAR" in uar_axes.get_ylabel() and uar_axes.get_ylim() == (0.0, 1.0)
    panels = [ax for ax in figures["confusion_by_mode"].axes if ax.get_gid()]
    assert sorted(ax.get_gid() for ax in panels) == sorted(f"fusion|{m}" for m in MODES)


def _texts(fig):
    """Every visible, non-empty text of the figure with its box on the canvas."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.figure is not None]


def test_no_text_overlaps_another(figures):
    """Titles, axis and tick labels, legends and the confusion cells' shares: no two boxes intersect. The per-fold
    means are not drawn as labels at all: they are in the report's table."""
    for key, fig in figures.items():
        boxes = _texts(fig)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not box_a.overlaps(box_b), f"{key}: {a!r} overlaps {b!r}"
    for key in ("uar_by_mode", "uar_per_fold"):
        assert all(not ax.texts for ax in figures[key].axes), key  # no number drawn in the plot


def test_the_numbers_are_in_the_report_beside_the_pictures(run):
    report = (run["out"] / "report.md").read_text()
    summary = run["summary"]
    section = report.split("(uar_by_mode.png)")[1].split("\n## ")[0]
    for system, modes in summary.items():
        row = next(line for line in section.splitlines() if line.startswith(f"| {system} |"))
        for mode, entry in modes.items():
            assert f"{entry['headline']['uar_pooled']:.3f}" in row
    per_fold = report.split("(uar_per_fold.png)")[1].split("\n## ")[0]
    assert all(plotstyle.mode_label(m, one_line=True) in per_fold for m in MODES)


def test_per_corpus_picture_only_with_several_corpora(tmp_path):
    write_run(tmp_path, corpora=("emodb",), seeds=(1,))
    assert not (tmp_path / "uar_by_corpus.png").exists()
    assert "uar_by_corpus.png" not in (tmp_path / "report.md").read_text()
    assert (tmp_path / "uar_by_mode.png").exists()


def test_most_confident_cold_mistakes(run):
    pred = run["pred"]
    errors = cv_pictures.confident_errors(pred, "fusion", "cold", n=5)
    assert len(errors) == 5 and (errors["actual"] != errors["predicted"]).all()
    assert list(errors["confidence"]) == sorted(errors["confidence"], reverse=True)
    cold_wrong = pred[(pred["system"] == "fusion") & (pred["mode"] == "cold") & (pred["actual"] != pred["predicted"])]
    top = cold_wrong[[f"p_{lab}" for lab in LABELS]].max(axis=1).max()
    assert errors["confidence"].iloc[0] == pytest.approx(top, abs=1e-3)
    assert errors["file"].str.endswith(".wav").all()  # the recording a person can listen to
    assert cv_pictures.confident_errors(pred, crossval.BASELINE_SYSTEM, "cold").empty  # no probabilities
    report = (run["out"] / "report.md").read_text()
    assert "most confident mistakes" in report and f"`{errors['file'].iloc[0]}`" in report
