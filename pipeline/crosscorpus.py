"""Stage crosscorpus: does the recipe carry to a corpus it never heard? Train on corpora, test on another.

Speaker folds test new people of a corpus the model knows (its language, its actors' style, its microphones).
A user's recordings are none of these, so over the corpora present the stage also trains on

  - every corpus but one, and tests on the one left out (leave one corpus out), and
  - each single corpus, and tests on each other one,

keeping only the classes both sides have (EmoDB has no surprise, RAVDESS no boredom): a cell's training rows are
the training corpora's clips of those classes, its test rows the test corpus's clips of them. Each cell is scored
the ways a user meets the model: cold (one file of a stranger, the training population's statistics) and
transductive (each test speaker normalised on its own clips); the field's eGeMAPS + SVM baseline is trained
and scored on the same rows (standardised on the training rows: cold; per speaker: transductive).

    python -m pipeline crosscorpus          (the `crosscorpus` stage of dvc.yaml)

Writes metrics/crosscorpus.json ({"cells": [one object per cell: train (list of corpora), test, classes,
files, uar_cold, uar_transductive, baseline_uar_cold, baseline_uar_transductive, seeds]}) and
metrics/crosscorpus/: heatmap.png (cold UAR, model and baseline, per training set x test corpus), cells.csv
(per cell and seed) and report.md. With one corpus there is nothing to cross: the files say so.
The model is trained with the recipe's fixed schedule on all the training rows (no validation speakers: a
fusion takes models.fusion.weight, or an even mix when that is null), with `crosscorpus.seeds`.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import TARGET_LABELS
from pipeline.io import atomic_path, write_csv, write_json, write_text
from pipeline.params import boolean, load, section, seed_list
from pipeline.paths import CROSSCORPUS_DIR, CROSSCORPUS_SUMMARY

log = logging.getLogger("pipeline.crosscorpus")


@dataclass(frozen=True)
class CrossCorpusConfig:
    seeds: tuple[int, ...]
    baseline: bool

    @classmethod
    def from_params(cls, params: dict) -> "CrossCorpusConfig":
        sec = section(params, "crosscorpus", keys=("seeds", "baseline"))
        return cls(seeds=seed_list(sec, "seeds", "crosscorpus"), baseline=boolean(sec, "baseline", "crosscorpus", True))


@dataclass(frozen=True)
class Cell:
    train: tuple[str, ...]  # the training corpora
    test: str               # the corpus tested, never among `train`
    classes: tuple[str, ...]  # the classes both sides have, in the canonical order
    design: str             # "leave one corpus out" | "one corpus to another"


def cells(labels_of: dict[str, set]) -> tuple[list[Cell], list[str]]:
    """The cells over corpora {corpus: its labels}: leave each corpus out, then each corpus to each other one
    (a pair already met as a leave-one-out cell, as with two corpora, is not repeated). A cell with fewer than
    two shared classes has nothing to classify: left out, with a note. -> (cells, notes)."""
    corpora = sorted(labels_of)
    out, notes, seen = [], [], set()
    if len(corpora) < 2:
        return out, notes
    plans = [(tuple(c for c in corpora if c != test), test, "leave one corpus out") for test in corpora]
    plans += [((a,), b, "one corpus to another") for a in corpora for b in corpora if a != b]
    for train, test, design in plans:
        if (train, test) in seen:
            continue
        seen.add((train, test))
        trained = set().union(*(labels_of[c] for c in train))
        shared = tuple(lab for lab in TARGET_LABELS if lab in trained and lab in labels_of[test])
        if len(shared) < 2:
            notes.append(f"{' + '.join(train)} -> {test}: {len(shared)} shared class(es), nothing to classify")
            continue
        out.append(Cell(train, test, shared, design))
    return out, notes


def cell_rows(corpus: np.ndarray, labels: np.ndarray, cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, test mask) over rows: the training corpora's rows of the shared classes, the test corpus's."""
    shared = np.isin(labels, list(cell.classes))
    return np.isin(corpus, list(cell.train)) & shared, (corpus == cell.test) & shared


def run(params: dict, out: Path | None = None) -> dict:
    """Every cell x seed; writes the json, the heatmap, cells.csv and report.md (to `out` instead of metrics/)."""
    from pipeline import crossval
    from pipeline.train import TrainConfig

    train_cfg = TrainConfig.from_params(params)
    cc = CrossCorpusConfig.from_params(params)
    summary_file, out_dir = (CROSSCORPUS_SUMMARY, CROSSCORPUS_DIR) if out is None else (Path(out) / "crosscorpus.json", Path(out))
    t0 = time.perf_counter()

    from pipeline import model_card, zoo
    from pipeline.backend import quiet_tensorflow
    from pipeline.balancing import balanced
    from pipeline.dataset import load_rows, shard_files

    kinds = zoo.input_kinds(train_cfg.model)
    originals = lambda meta: ~meta["augmented"].to_numpy(dtype=bool)  # noqa: E731
    data = balanced(load_rows(kinds, select=originals), params,
                    copies=lambda: load_rows(kinds, select=lambda meta: ~originals(meta)))
    corpus = data.meta["corpus"].to_numpy(dtype=object)
    found, notes = cells({c: set(data.labels[corpus == c].tolist()) for c in sorted(set(corpus.tolist()))})
    if not found:
        note = ("cross-corpus evaluation needs two corpora with two shared classes; found "
                + (", ".join(sorted(set(corpus.tolist()))) or "none"))
        log.info(note)
        write_json(summary_file, {"cells": [], "note": note})
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_heatmap([], out_dir / "heatmap.png")
        write_csv(out_dir / "cells.csv", pd.DataFrame(columns=["train", "test", "seed"]))
        write_text(out_dir / "report.md", f"# Cross-corpus\n\n{note}\n")
        return {}
    settings = model_card.shard_settings(shard_files())
    model_card.check_rendered_as_params(params, settings)
    baseline_x = (load_rows(zoo.BASELINE_INPUT, select=originals, needed_by="the crosscorpus baseline").x
                  if cc.baseline else None)
    quiet_tensorflow()
    import keras
    from tqdm import tqdm

    log.info("crosscorpus: %s, %d cells x %d seeds over %s", train_cfg.model, len(found), len(cc.seeds),
             ", ".join(sorted(set(corpus.tolist()))))
    rows = []
    none = np.zeros(len(data), dtype=bool)
    for cell in tqdm(found, desc="crosscorpus", unit="cell"):
        train, test_rows = cell_rows(corpus, data.labels, cell)
        test = data.subset(test_rows)
        classes = list(cell.classes)
        base = {}
        if cc.baseline:
            for mode, per_speaker in (("cold", False), ("transductive", True)):
                predicted = crossval.baseline_scores(baseline_x[train], data.labels[train], baseline_x[test_rows],
                                                     data.speakers[train], test.speakers, per_speaker)
                base[mode] = crossval._metrics(test.labels, predicted, classes)["uar"]
        for seed in cc.seeds:
            t = time.perf_counter()
            cfg = dataclasses.replace(train_cfg, seed=seed)
            model, card, _ = crossval._train(cfg, kinds, data, {"train": train, "val": none}, classes, settings)
            predict = crossval.scorer(model)
            uar = {}
            for mode, speakers in (("cold", None), ("transductive", test.speakers)):  # the ways a cell reports
                probs = predict(model_card.model_inputs(test.inputs, card, speakers=speakers)[0])
                uar[mode] = crossval._metrics(test.labels, np.asarray(classes)[probs.argmax(axis=1)], classes)["uar"]
            keras.backend.clear_session()
            rows.append({"train": " + ".join(cell.train), "test": cell.test, "design": cell.design,
                         "classes": " ".join(classes), "train_files": int(train.sum()), "files": len(test),
                         "seed": seed, "uar_cold": round(uar["cold"], 4),
                         "uar_transductive": round(uar["transductive"], 4),
                         **{f"baseline_uar_{m}": round(v, 4) for m, v in base.items()},
                         "seconds": round(time.perf_counter() - t, 1)})
    frame = pd.DataFrame(rows)
    summary = summarise(frame, found)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(summary_file, {"cells": summary, **({"notes": notes} if notes else {})})
    write_csv(out_dir / "cells.csv", frame)
    plot_heatmap(summary, out_dir / "heatmap.png")
    write_text(out_dir / "report.md", report_md(summary, train_cfg.model, cc, notes, time.perf_counter() - t0))
    for c in summary:
        print(f"crosscorpus {' + '.join(c['train']):>24} -> {c['test']:<10} {len(c['classes'])} classes, "
              f"{c['files']} files: UAR cold {c['uar_cold']:.3f}, transductive {c['uar_transductive']:.3f}"
              + (f"; baseline cold {c['baseline_uar_cold']:.3f}" if "baseline_uar_cold" in c else ""))
    return {"cells": summary}


def summarise(frame: pd.DataFrame, found: list[Cell]) -> list[dict]:
    """One object per cell: UARs averaged over the seeds."""
    out = []
    for cell in found:
        mine = frame[(frame["train"] == " + ".join(cell.train)) & (frame["test"] == cell.test)]
        entry = {"train": list(cell.train), "test": cell.test, "design": cell.design, "classes": list(cell.classes),
                 "files": int(mine["files"].iloc[0]), "train_files": int(mine["train_files"].iloc[0]),
                 "uar_cold": round(float(mine["uar_cold"].mean()), 4),
                 "uar_transductive": round(float(mine["uar_transductive"].mean()), 4)}
        for key in ("baseline_uar_cold", "baseline_uar_transductive"):
            if key in mine:
                entry[key] = round(float(mine[key].iloc[0]), 4)
        entry["seeds"] = int(mine["seed"].nunique())
        out.append(entry)
    return out


def plot_heatmap(summary: list[dict], path: Path) -> None:
    """Cold UAR per training set (rows) x test corpus (columns); each cell the model's UAR over the baseline's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trains = list(dict.fromkeys(" + ".join(c["train"]) for c in summary))
    tests = sorted({c["test"] for c in summary})
    grid = np.full((max(len(trains), 1), max(len(tests), 1)), np.nan)
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * max(len(tests), 1), 1.6 + 0.6 * max(len(trains), 1)), dpi=110)
    for c in summary:
        i, j = trains.index(" + ".join(c["train"])), tests.index(c["test"])
        grid[i, j] = c["uar_cold"]
        text = f"{c['uar_cold']:.2f}" + (f"\n(baseline {c['baseline_uar_cold']:.2f})" if "baseline_uar_cold" in c else "")
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if c["uar_cold"] < 0.5 else "black")
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(image, ax=ax, label="UAR, cold (one file of a stranger)")
    ax.set_xticks(range(len(tests)), tests)
    ax.set_yticks(range(len(trains)), trains)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title("Cross-corpus UAR (shared classes)" if summary else "Cross-corpus: needs two corpora")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def report_md(summary: list[dict], model: str, cc: CrossCorpusConfig, notes: list[str], seconds: float) -> str:
    lines = [f"# Cross-corpus: {model}", "",
             f"Trained on the corpora on the left with the recipe's fixed schedule, seeds {list(cc.seeds)}; tested on "
             "the corpus on the right, only the classes both sides have. Cold: one file of a stranger (the training "
             "population's statistics); transductive: each test speaker normalised on its own clips.", "",
             "| trained on | tested on | classes | files | UAR cold | UAR transductive | baseline cold | "
             "baseline transductive |", "|---|---|---|---|---|---|---|---|"]
    for c in summary:
        lines.append(f"| {' + '.join(c['train'])} | {c['test']} | {len(c['classes'])} | {c['files']} | "
                     f"{c['uar_cold']:.3f} | {c['uar_transductive']:.3f} | {c.get('baseline_uar_cold', '')} | "
                     f"{c.get('baseline_uar_transductive', '')} |")
    lines += ["", "![cross-corpus heatmap](heatmap.png)", "", f"Time: {seconds:.0f} s."]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline crosscorpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="write crosscorpus.json and the rest to DIR instead of metrics/ (outside DVC's outputs)")
    args = parser.parse_args(argv)
    run(load(), out=args.out)


if __name__ == "__main__":
    import sys

    from pipeline.cli import run_main

    sys.exit(run_main(main))
