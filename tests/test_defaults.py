"""Each default lives in one place. Model hyper-parameters: the modules' DEFAULTS, which params.yaml's
`models:` section is written from (python -m pipeline models --write-params). Stage settings: the code's
default for a key that params.yaml leaves out equals params.yaml's value (epochs 30 vs 20, patience 8 vs 6
and image 128 vs 64 differed before), except the "off" switches listed in INTENDED."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import zoo
from pipeline.cli import PARAMS_CHECKS

ROOT = Path(__file__).resolve().parents[1]
PARAMS_TEXT = (ROOT / "params.yaml").read_text()
PARAMS = yaml.safe_load(PARAMS_TEXT)


def test_params_models_section_is_written_from_the_modules_defaults():
    assert zoo.params_with_model_defaults(PARAMS_TEXT) == PARAMS_TEXT, \
        "params.yaml `models:` differs from the modules' DEFAULTS: run python -m pipeline models --write-params"
    assert PARAMS["models"] == zoo.all_defaults()


def test_a_changed_default_is_written_into_params_and_nothing_else_moves(tmp_path, monkeypatch):
    monkeypatch.setitem(zoo.get("vgg19").DEFAULTS, "learning_rate", 2.5e-4)
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_TEXT)
    from pipeline.zoo import main

    main(["--write-params", str(params)])
    new = params.read_text()
    changed = [(a, b) for a, b in zip(PARAMS_TEXT.splitlines(), new.splitlines()) if a != b]
    assert changed == [("    learning_rate: 5.0e-05", "    learning_rate: 0.00025")]
    assert len(new.splitlines()) == len(PARAMS_TEXT.splitlines())
    assert yaml.safe_load(new)["models"]["vgg19"]["learning_rate"] == 2.5e-4


def test_end_of_line_comments_in_the_models_section_survive_a_rewrite(monkeypatch):
    text = PARAMS_TEXT.replace("    batch_size: 16\n", "    batch_size: 16     # a note on the batch\n", 1)
    monkeypatch.setitem(zoo.get("vgg19").DEFAULTS, "batch_size", 8)
    new = zoo.params_with_model_defaults(text)
    assert "    batch_size: 8      # a note on the batch\n" in new
    assert sum("#" in line for line in new.splitlines()) == sum("#" in line for line in text.splitlines())


def test_an_override_of_a_model_default_reaches_training():
    # what `dvc exp run -S models.vgg19.learning_rate=1e-4` does to params.yaml
    from pipeline.train import TrainConfig

    params = yaml.safe_load(PARAMS_TEXT)
    params["model"] = "vgg19"
    params["models"]["vgg19"]["learning_rate"] = "1e-4"
    cfg = TrainConfig.from_params(params)
    assert cfg.learning_rate == pytest.approx(1e-4) and cfg.hp["learning_rate"] == pytest.approx(1e-4)


def _comparable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _comparable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {type(value).__name__: _comparable(vars(value))}
    return value


def _reader(module_name: str, qualname: str):
    import importlib

    reader = importlib.import_module(module_name)
    for attr in qualname.split("."):
        reader = getattr(reader, attr)
    if qualname.startswith("TrainConfig"):  # needs a model to look up its hyper-parameters
        return lambda p: reader({"model": PARAMS["model"], **p})
    return reader


# Code defaults that differ from params.yaml on purpose, with the reason: switches whose code default is
# "off" (what a params file without the key, or a library caller, gets), which the recipe turns on.
INTENDED = {
    ("pipeline.train", "schedule"): "plateau = the papers' (EarlyStopping + ReduceLROnPlateau); the recipe: cosine",
    ("pipeline.train", "normalisation"): "none unless asked; the recipe normalises each speaker (params.yaml)",
    ("pipeline.train", "normalisation_scale"): "a plain z-score unless asked; the recipe divides by the population's "
                                               "standard deviation (chosen on validation speakers, docs/recipe.md)",
    ("pipeline.train", "normalisation_shrinkage"): "a speaker under min_clips clips gets the population's statistics "
                                                   "unless asked; the recipe shrinks its mean (docs/recipe.md)",
    ("pipeline.train", "normalisation_cold"): "a stranger's file gets the whole population's statistics unless asked; "
                                              "the recipe: its gender's speakers (functionals), its own clip "
                                              "shrunk (spectrogram; docs/recipe.md)",
    ("pipeline.train", "prior_correction"): "the model's plain posterior unless asked; the recipe divides out the "
                                            "training set's class frequencies (the decision UAR rewards, docs/recipe.md)",
    ("pipeline.train", "augment"): "the papers' on-the-fly augmentation (time shift, noise) unless asked; the "
                                   "recipe adds SpecAugment and mixup and drops the noise",
    ("pipeline.train", "branches"): "a fusion's branches carry the train settings above, so differ as they do",
}


@pytest.mark.parametrize("module_name,qualname", PARAMS_CHECKS)  # every section reader the stages check
def test_code_defaults_equal_params_yaml(module_name, qualname):
    read = _reader(module_name, qualname)
    coded = _comparable(read({}))
    written = _comparable(read(PARAMS))
    if not isinstance(coded, dict):  # a tuple of settings
        coded, written = dict(enumerate(coded)), dict(enumerate(written))
    differ = {key: (coded[key], written[key]) for key in coded
              if coded[key] != written[key] and (module_name, key) not in INTENDED}
    assert not differ, f"{module_name}.{qualname}: code default vs params.yaml: {differ}"


def test_cli_prints_the_defaults_it_writes():
    out = subprocess.run([sys.executable, "-m", "pipeline", "models", "--defaults"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert yaml.safe_load(out) == zoo.all_defaults() and "&id" not in out
