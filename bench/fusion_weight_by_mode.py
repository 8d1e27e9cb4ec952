"""The fusion's image weight for each way of meeting a speaker, from the fold models a cross-validation kept
(`python bench/crossval_grid.py --keep-models ...` or `python -m pipeline crossval --keep-models DIR`): each branch's
probabilities once per fold and mode, then every weight of a grid combined as the fused model does
(pipeline.zoo.fusion.combine), on the validation speakers (the model of step 1, fold<k>_seed<s>/first/) and the
test speakers (the refit). No training: the weight is applied after the branches.

    python bench/fusion_weight_by_mode.py DIR "split.folds=10|crossval.seeds=[42]" [--cold image:clip,compare:gender]

Prints, per mode, the pooled UAR of each weight on val and test and the weight the validation speakers prefer,
and writes DIR/weight_by_mode.csv (mode, part, weight, pooled UAR). The params (params.yaml with the `-S`-style
overrides) must be those of the run that kept the models (its folds and validation draw).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEIGHTS = np.round(np.linspace(0.0, 1.0, 21), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, help="the folder of fold<k>_seed<s>/ model.keras + card.json")
    ap.add_argument("overrides", help="key=value|key=value... of the run that kept the models")
    ap.add_argument("--cold", default="image:clip,compare:gender",
                    help="the cold rule to serve under: one policy, or per input (default: today's)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from kept_models import fold_parts, load

    from pipeline import crossval
    from pipeline.backend import quiet_tensorflow
    from pipeline.cli import setup_logging
    from pipeline.zoo import fusion

    setup_logging()
    quiet_tensorflow()
    params, data = load(args.overrides)
    how = params["models"]["fusion"]["combine"]
    per_kind = dict(p.split(":") for p in args.cold.split(",")) if ":" in args.cold else {}
    labels = [lab for lab in crossval.TARGET_LABELS if lab in set(data.labels)]
    scored = []  # (part, mode, seed, fold, actual, speaker, p_image, p_features, classes)
    for k, seed, part_name, part, model, card in fold_parts(args.models, params, data):
        for kind, spec in card["inputs"].items():
            spec["normalisation"]["cold"] = per_kind.get(kind, args.cold)
        image = crossval.score_modes(crossval.scorer(model, "image"), card, part, seed)
        feats = crossval.score_modes(crossval.scorer(model, "compare"), card, part, seed)
        for mode, (rows, p_image) in image.items():
            scored.append((part_name, mode, seed, k, part.labels[rows], part.speakers[rows], p_image,
                           feats[mode][1], card["labels"]))
    out = []
    for (part_name, mode), group in pd.DataFrame(scored, columns=["part", "mode", "seed", "fold", "actual", "speaker",
                                                                   "p_image", "p_features", "classes"]).groupby(
            ["part", "mode"], sort=False):
        for w in WEIGHTS:
            frames = []
            for _, r in group.iterrows():
                fused = fusion.combine(float(w), r["p_image"], r["p_features"], how)
                frames.append(pd.DataFrame({"seed": r["seed"], "speaker": r["speaker"], "actual": r["actual"],
                                            "predicted": np.asarray(r["classes"])[fused.argmax(axis=1)]}))
            out.append({"mode": mode, "part": part_name, "weight": float(w),
                        "uar": round(crossval.pooled_uar(pd.concat(frames), labels), 4)})
    table = pd.DataFrame(out)
    table.to_csv(args.models / "weight_by_mode.csv", index=False)
    for mode, g in table.groupby("mode", sort=False):
        val, test = g[g["part"] == "val"].set_index("weight")["uar"], g[g["part"] == "test"].set_index("weight")["uar"]
        best = float(val.idxmax()) if len(val) else None
        print(f"{mode:<17} " + " ".join(f"{w:.2f}:{val.get(w, np.nan):.3f}/{test.get(w, np.nan):.3f}"
                                        for w in WEIGHTS[::2])
              + (f"  | val prefers {best:.2f} (val {val[best]:.3f}, test {test.get(best, np.nan):.3f}; "
                 f"0.5: val {val.get(0.5):.3f}, test {test.get(0.5):.3f})" if best is not None else ""))


if __name__ == "__main__":
    main()
