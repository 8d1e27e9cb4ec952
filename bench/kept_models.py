"""The fold models a cross-validation kept (`python -m pipeline crossval --keep-models DIR`, or
bench/crossval_grid.py --keep-models), loaded as bench/rescore_cold.py and bench/fusion_weight_by_mode.py score
them again without training: the params and rows of the run that kept them, then each fold model with the
speakers it meets (the validation speakers and the test speakers)."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(overrides: str) -> tuple[dict, object]:
    """params.yaml with the `-S`-style overrides (key=value|key=value...) of the run that kept the models, and the
    rows it cross-validated: the original clips, balanced as crossval balances them."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from crossval_grid import apply

    from pipeline.balancing import balanced
    from pipeline.dataset import load_rows
    from pipeline.zoo import input_kinds

    params = copy.deepcopy(yaml.safe_load(Path("params.yaml").read_text()))
    for a in filter(None, overrides.split("|")):
        apply(params, a)
    kinds = input_kinds(params["model"])
    originals = lambda meta: ~meta["augmented"].to_numpy(dtype=bool)  # noqa: E731
    return params, balanced(load_rows(kinds, select=originals), params, copies=lambda: None)


def fold_parts(models: Path, params: dict, data, training: bool = False):
    """Per kept model (models/fold<k>_seed<s>/) and part (val, then test): (k, seed, part name, the part's rows,
    model, card), and with `training` the fold's training rows last. The validation speakers met the model of step 1 (kept in first/ when the run refit), the test
    speakers the model scored on them. Prints `<run>: scored` when a run's parts are done."""
    from pipeline import crossval
    from pipeline.paths import MANIFEST
    from pipeline.split import SplitConfig
    from pipeline.zoo import load_model

    manifest = pd.read_parquet(MANIFEST)
    splits = crossval.fold_splits(manifest, SplitConfig.from_params(params), [])
    for run in sorted(models.glob("fold*_seed*")):
        k, seed = (int(v) for v in run.name[4:].split("_seed"))
        where = crossval._row_splits(data.meta, manifest, splits[k])
        for part_name in ("val", "test"):
            source = run / "first" if part_name == "val" and (run / "first").exists() else run
            part = data.subset(where == part_name)
            if len(part) == 0:
                continue
            model = load_model(source / "model.keras", compile=False)
            card = yaml.safe_load((source / "card.json").read_text())
            yield (k, seed, part_name, part, model, card) + ((data.subset(where == "train"),) if training else ())
        print(f"{run.name}: scored", flush=True)
