"""The shipped model on speakers it never saw, as a user meets it: the final fit (pipeline/final.py, the recipe
predict ships) trained on every labelled speaker but a held-out group, then predict's own path (the audio file
read, standardised, rendered, windowed and normalised as one file of a stranger: cold) on each held-out file.

    python bench/final_heldout.py --folds 5 [--cv-cold 0.749] [--out bench/results/final_heldout/emodb]

Run in a work tree whose data/raw holds a development corpus and whose shards are rendered (dvc repro render).
The held-out groups are the speaker folds of split.folds = --folds (pipeline.split: EmoDB's 10 speakers in 5
pairs), every group in turn, so every speaker is held out once. Prints the UAR per group and pooled over all
held-out files with a speaker-bootstrap 95 % interval, beside crossval's cold figure when given (--cv-cold, or
read from --cv metrics/cv.json), and writes predictions.csv and summary.json to --out.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5, help="held-out groups: the speaker folds of split.folds=K")
    ap.add_argument("--only", type=int, nargs="*", help="only these groups (0..K-1)")
    ap.add_argument("--cv-cold", type=float, help="crossval's cold pooled UAR to compare with")
    ap.add_argument("--cv", type=Path, help="or the cv.json to read it from")
    ap.add_argument("--out", type=Path, default=Path("bench/results/final_heldout"))
    ap.add_argument("--reuse", action="store_true", help="score the models an earlier run left in --out, no training")
    args = ap.parse_args()

    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow()  # openSMILE's library before TensorFlow's (pipeline/backend.py): the other way round crashes
    from pipeline import model_card
    from pipeline.cli import setup_logging
    from pipeline.crossval import bootstrap_ci, keep, pooled_uar
    from pipeline.final import fit_final
    from pipeline.params import load
    from pipeline.paths import MANIFEST
    from pipeline import predict
    from pipeline.predict import prepared_chunks, score
    from pipeline.runtime import load as load_runtime
    from pipeline.split import SplitConfig, fold_splits

    setup_logging()
    # predict's front end in this process: a pool forked after TensorFlow has started (training, here) crashes
    predict.PARALLEL_FROM = 10 ** 9
    params = load()
    split_params = copy.deepcopy(params)
    split_params["split"]["folds"] = args.folds
    manifest = pd.read_parquet(MANIFEST)
    groups = []
    for split in fold_splits(manifest, SplitConfig.from_params(split_params), []):
        groups.append(sorted(set(manifest.loc[(split == "test").to_numpy(), "speaker"])))
    args.out.mkdir(parents=True, exist_ok=True)
    rows, timing, shards = [], [], []
    import keras

    def from_shards(where: Path, card: dict, held_out: list, g: int) -> pd.DataFrame:
        """The held-out rows as crossval meets them (the shards, not the audio files): cold and transductive."""
        from pipeline.crossval import prediction_frame, score_modes, scorer
        from pipeline.dataset import load_rows
        from pipeline.zoo import load_model

        rows_ = load_rows(model_card.input_kinds(card), select=lambda m: m["speaker"].isin(held_out).to_numpy()
                          & ~m["augmented"].to_numpy(dtype=bool))
        model = load_model(where / "model.keras", compile=False)
        out = []
        for mode, (scored, probs) in score_modes(scorer(model), card, rows_, 0).items():
            if mode in ("cold", "transductive"):
                out.append(prediction_frame("final", mode, g, 0, rows_.subset(scored),
                                            np.asarray(card["labels"])[probs.argmax(axis=1)]))
        keras.backend.clear_session()
        return pd.concat(out, ignore_index=True)

    for g, held_out in enumerate(groups):
        if args.only and g not in args.only:
            continue
        t = time.perf_counter()
        where = args.out / f"group{g}"
        if args.reuse and (where / "model.keras").exists():
            card = json.loads((where / "card.json").read_text())
        else:
            model, card, info = fit_final(params, exclude_speakers=held_out)
            keep(model, card, where)
            keras.backend.clear_session()
        fit_s = time.perf_counter() - t
        shards.append(from_shards(where, card, held_out, g))
        runtime = load_runtime(where / "model.keras", model_card.input_kinds(card))
        acfg, fcfg = model_card.configs(card)
        test = manifest[manifest["speaker"].isin(held_out)]
        truth = dict(zip(test["path"].astype(str), test["label"]))
        speaker = dict(zip(test["path"].astype(str), test["speaker"]))
        t = time.perf_counter()
        files = [Path(p) for p in test["path"]]
        for chunk in prepared_chunks(files, acfg, fcfg, model_card.input_kinds(card)):
            for r in score(runtime, chunk, card):  # no speaker statistics: predict's default, one file of a stranger
                if "error" in r:
                    print(f"  {r['path']}: {r['error']}", file=sys.stderr)
                    continue
                path = str(r["path"])
                rows.append({"group": g, "seed": 0, "speaker": speaker[path], "path": path, "actual": truth[path],
                             "predicted": r["emotion"], "normalisation": r["normalisation"],
                             **{f"p_{k}": round(v, 6) for k, v in r["probabilities"].items()}})
        timing.append({"group": g, "speakers": " ".join(held_out), "fit_s": round(fit_s, 1),
                       "predict_s": round(time.perf_counter() - t, 1), "trained_on": card["trained_on"]})
        done = pd.DataFrame([r for r in rows if r["group"] == g])
        labels = sorted(set(done["actual"]))
        print(f"group {g} ({' '.join(held_out)}): {len(done)} files, cold UAR "
              f"{pooled_uar(done, labels):.3f}; trained on {card['trained_on']} in {fit_s:.0f} s", flush=True)
    pred = pd.DataFrame(rows)
    pred.to_csv(args.out / "predictions.csv", index=False)
    shard_pred = pd.concat(shards, ignore_index=True)
    shard_pred.to_csv(args.out / "shard_predictions.csv", index=False)
    labels = sorted(set(pred["actual"]))
    per_group = {g: round(pooled_uar(part, labels), 4) for g, part in pred.groupby("group")}
    pooled = pooled_uar(pred, labels)
    lo, hi = bootstrap_ci(pred, labels)
    cv_cold = args.cv_cold
    if cv_cold is None and args.cv is not None:
        cv_cold = json.loads(args.cv.read_text())["cv_cold"]["uar_pooled"]
    summary = {"groups": len(per_group), "files": len(pred), "uar_pooled": round(pooled, 4),
               "uar_pooled_ci95": [round(lo, 4), round(hi, 4)],
               "uar_mean": round(float(np.mean(list(per_group.values()))), 4),
               "uar_std": round(float(np.std(list(per_group.values()))), 4), "per_group": per_group,
               "crossval_cold": cv_cold, "timing": timing,
               "from_shards": {mode: round(pooled_uar(g, sorted(set(g["actual"]))), 4)
                               for mode, g in shard_pred.groupby("mode")}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"final fit, held-out speakers, predict's cold path: pooled UAR {pooled:.3f} [{lo:.3f}, {hi:.3f}] "
          f"({summary['uar_mean']:.3f} ± {summary['uar_std']:.3f} over {len(per_group)} groups, {len(pred)} files)"
          + (f"; crossval cold {cv_cold:.3f}, difference {pooled - cv_cold:+.3f} (goal >= -0.02)"
             if cv_cold is not None else ""))
    print("the same models on the held-out rows as crossval meets them (shards): "
          + ", ".join(f"{m} {v:.3f}" for m, v in summary["from_shards"].items()))


if __name__ == "__main__":
    main()
