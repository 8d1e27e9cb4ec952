"""The final fit (pipeline/final.py): the recipe it takes from crossval, and only from a cross-validation that ran."""
from __future__ import annotations

import json

import pandas as pd
import yaml

from pipeline import final
from pipeline.train import TrainConfig
from tests.conftest import REPO


def config(**train):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"].update(train)
    params["models"]["fusion"]["weight"] = None  # chosen per training: the final fit takes the folds' median
    return TrainConfig.from_params(params)


def write_run(cv_dir, folds: int):
    cv_dir.mkdir(parents=True, exist_ok=True)
    (cv_dir / "cv.json").write_text(json.dumps({"cv": {"folds": folds}}))
    pd.DataFrame({"system": "fusion", "mode": "transductive", "fold": [0, 1, 2], "seed": 42, "epochs": [12, 20, 30],
                  "fusion_weight": [0.3, 0.4, 0.9]}).to_csv(cv_dir / "folds.csv", index=False)


def test_the_final_fit_takes_the_folds_median_epoch_and_weight(tmp_path):
    write_run(tmp_path / "run", folds=3)
    cfg, info = final.recipe(config(schedule="plateau", epochs=40), tmp_path / "run")
    assert (cfg.epochs, cfg.fusion_weight, cfg.schedule) == (20, 0.4, "constant")
    assert "median" in info["epochs_from"] and "median" in info["fusion_weight_from"]


def test_an_earlier_runs_files_beside_a_cross_validation_that_is_off_are_not_read(tmp_path):
    write_run(tmp_path / "run", folds=0)  # cv.json says off; folds.csv is an earlier run's
    cfg, info = final.recipe(config(schedule="plateau", epochs=40), tmp_path / "run")
    assert (cfg.epochs, cfg.fusion_weight) == (40, 0.5)
    assert final.calibration_of("fusion", tmp_path / "run") is None
    held_out, _ = final.recipe(config(schedule="plateau", epochs=40), None)  # bench/final_heldout.py's
    assert (held_out.epochs, held_out.fusion_weight) == (40, 0.5)
