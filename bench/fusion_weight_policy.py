"""How should a fusion's weight be set, and its branches combined? Judged on validation speakers only, never on a
test fold.

Reads the val_predictions.csv of crossval runs of the fusion (metrics/cv/ or bench/results/crossval/NAME/: each
fold's validation speakers, drawn from the next fold so that they differ from fold to fold, scored by the
model of step 1 with both branches' probabilities, met the four ways). Each fold's validation speakers are held
out in turn and scored with the branches fused by `--combine` (pipeline.zoo.fusion.combine: `product`, the
weighted geometric mean p_image^w * p_features^(1 - w) renormalised, the default; or `mean`,
w * p_image + (1 - w) * p_features), the image branch's weight w set by:

  chosen on another fold:  the product's rule (pipeline.train.fusion_weight: the w of best validation UAR
                           averaged over the ways of meeting a speaker) on another fold's validation speakers,
                           each other fold of the seed in turn: what a fold does, a weight chosen on its
                           validation speakers meeting other people.
  chosen on all others:    the same rule on every other fold's validation files of the seed at once (the held-out
                           speakers' own files left out): the weight the rule finds with ample data.
  even mix:                0.5 (the product's default), and for comparison 0.5 with the other rule.
  image / features alone:  1 and 0, for reference.

    python bench/fusion_weight_policy.py bench/results/crossval/fusion/val_predictions.csv [more runs' files] \
        [--combine product|mean]

Pooled UAR per way of meeting the speakers (each seed's held-out files together, then the mean over seeds, as
crossval pools), their mean (what the rule maximises), and per policy how many held-out (seed, fold) units it
scores above / level with / below the even mix on that mean.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.crossval import branch_system  # noqa: E402
from pipeline.zoo.fusion import COMBINES, DEFAULTS, combine  # noqa: E402

IMAGE, FEATURES = branch_system("cnn_pooled"), branch_system("functionals")
MODES = ("transductive", "enrolled10", "enrolled5", "cold")


def branch_table(rows: pd.DataFrame, image: str, features: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per (seed, fold, mode, file): the truth and both branches' probabilities side by side
    (predictions.csv or val_predictions.csv of a crossval run of the fusion)."""
    probs = [c for c in rows.columns if c.startswith("p_")]
    key = ["seed", "fold", "mode", "path"]
    pi = rows[rows.system == image].set_index(key)
    pf = rows[rows.system == features].set_index(key)
    if pi.empty or pf.empty:
        raise SystemExit(f"no rows of {image!r} and {features!r}: is this a fusion's crossval run?")
    if len(pi) != len(pf) or not pi.index.sort_values().equals(pf.index.sort_values()):
        raise SystemExit("the two branches were not scored on the same files of the same folds and seeds")
    pf = pf.loc[pi.index]
    table = pi[["speaker", "actual"]].copy()
    table["image"] = list(pi[probs].to_numpy())
    table["features"] = list(pf[probs].to_numpy())
    return table.reset_index(), [c[2:] for c in probs]


def choose(part: pd.DataFrame, classes: list[str], how: str) -> float:
    """The product's rule on these validation rows (every mode present), for the fusion `how`."""
    from pipeline.train import fusion_weight

    probs = {mode: {"image": np.stack(g["image"]), "features": np.stack(g["features"])}
             for mode, g in part.groupby("mode")}
    labels = {mode: g["actual"].to_numpy() for mode, g in part.groupby("mode")}
    return fusion_weight(probs, labels, classes, image_kind="image", how=how)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("val_predictions", type=Path, nargs="+", help="val_predictions.csv of crossval runs of a fusion")
    ap.add_argument("--image", default=IMAGE, help=f"system name of the image branch ({IMAGE!r})")
    ap.add_argument("--features", default=FEATURES, help=f"system name of the features branch ({FEATURES!r})")
    ap.add_argument("--combine", choices=COMBINES, default=DEFAULTS["combine"],
                    help=f"how the branches are fused (default {DEFAULTS['combine']}, the product's default)")
    args = ap.parse_args()
    from pipeline.crossval import pooled_uar

    frames = [pd.read_csv(p) for p in args.val_predictions]
    seeds = [set(f["seed"]) for f in frames]
    if sum(map(len, seeds)) != len(set().union(*seeds)):
        raise SystemExit("a seed appears in two of the files: give each seed's run once")
    table, classes = branch_table(pd.concat(frames, ignore_index=True), args.image, args.features)

    other = next(c for c in COMBINES if c != args.combine)
    even_other = f"even mix, {other}"
    policies = ("chosen on another fold", "chosen on all others", "even mix", even_other, "image alone",
                "features alone")
    scored, weights, units = {p: [] for p in policies}, {p: [] for p in policies}, []
    by_fold = {key: part for key, part in table.groupby(["seed", "fold"])}
    rule = {key: choose(part, classes, args.combine) for key, part in by_fold.items()}  # each fold's own choice
    for (seed, fold), mine in by_fold.items():
        held = set(mine["speaker"])
        others = [key for key in by_fold if key[0] == seed and key[1] != fold
                  and not held & set(by_fold[key]["speaker"])]
        if not others:
            continue
        rest = pd.concat([by_fold[key] for key in others])
        candidates = {"chosen on another fold": [rule[key] for key in others],
                      "chosen on all others": [choose(rest[~rest.speaker.isin(held)], classes, args.combine)],
                      "even mix": [0.5], even_other: [0.5], "image alone": [1.0], "features alone": [0.0]}
        pi, pf = np.stack(mine["image"]), np.stack(mine["features"])
        unit = {}
        for policy, ws in candidates.items():
            means = []
            for w in ws:
                how = other if policy == even_other else args.combine
                predicted = np.asarray(classes)[combine(w, pi, pf, how).argmax(axis=1)]
                frame = mine[["seed", "mode", "speaker", "actual"]].assign(predicted=predicted)
                scored[policy].append(frame)
                weights[policy].append(w)
                means.append(np.mean([pooled_uar(g, classes) for _, g in frame.groupby("mode")]))
            unit[policy] = float(np.mean(means))
        units.append(unit)

    if not units:
        raise SystemExit("no two folds of a seed have different validation speakers: nothing to hold out")
    modes = [m for m in MODES if m in set(table["mode"])]
    n_seeds = table["seed"].nunique()
    print(f"branches fused by {args.combine}; {len(units)} fold-seeds' validation speakers held out "
          f"({table['speaker'].nunique()} speakers, "
          f"{n_seeds} seed(s)); {sum(len(f) for f in scored['even mix'])} scored files over {len(modes)} ways; "
          "a weight chosen on another fold is scored once per other fold (pooled over them)\n")
    print("| weight | w used: mean [min, max] | " + " | ".join(modes)
          + " | mean of the ways | units above / level / below the even mix |")
    print("|---" * (len(modes) + 4) + "|")
    for policy in policies:
        rows = pd.concat(scored[policy], ignore_index=True)
        per_mode = [pooled_uar(rows[rows["mode"] == m], classes) for m in modes]
        w = np.asarray(weights[policy])
        diff = np.array([u[policy] - u["even mix"] for u in units])
        versus = "" if policy == "even mix" else \
            f"{(diff > 1e-9).sum()} / {(np.abs(diff) <= 1e-9).sum()} / {(diff < -1e-9).sum()}"
        print(f"| {policy} | {w.mean():.2f} [{w.min():.2f}, {w.max():.2f}] | "
              + " | ".join(f"{u:.3f}" for u in per_mode) + f" | {np.mean(per_mode):.3f} | {versus} |")


if __name__ == "__main__":
    main()
