"""The model zoo: one module per model, each exposing NAME, INPUT, DEFAULTS and build().

Importing this package (and `get`, `hyperparameters`, `input_kinds`) never imports Keras, so the data
stages can validate `model` and `models.<name>` in params.yaml and learn which extra feature columns
to render at no cost. Keras is imported by a model's `build`, by `make_optimizer` and by `load_model`.

    hp = zoo.hyperparameters(name, params["models"].get(name))   # DEFAULTS + overrides, checked
    model = zoo.build(name, input_shape, n_classes, hp, norm)      # uncompiled, softmax output
    model.compile(optimizer=zoo.make_optimizer(hp), loss="categorical_crossentropy", ...)
    model = zoo.load_model(paths.MODEL)                        # registers the custom layers first

`python -m pipeline models` lists the zoo; `--defaults` prints every model's defaults as YAML.
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType

from pipeline.errors import ParamsError

MODEL_NAMES = (
    "cnn",
    "lstm",
    "cnn_lstm",
    "cnn_blstm",
    "cnn_blstm_attention",
    "cnn_pooled",
    "vgg19",
    "resnet50",
    "mobilenetv3large",
    "densenet121",
    "cnn1d",
    "cnn2d_mfcc",
    "mlp",
    "functionals",
    "fusion",
)

# What a model reads: its module's INPUT (one kind) or INPUTS (several); input_kinds() reads it from the module
# (importing a model module does not import Keras). The kinds:
#   image      (height=mel bins, width=time frames, channels) spectrogram scaled to 0..1
#   mfcc       (frames, n_mfcc, 1) MFCC matrix
#   vector     (length,) flattened MFCC + zero-crossing rate + RMS energy
#   utterance  (length,) utterance-level statistics (mean MFCC, chroma, mel)
#   compare    (6373,) openSMILE ComParE 2016 functionals
#   egemaps    (88,) openSMILE eGeMAPSv02 functionals
INPUT_KINDS = ("image", "mfcc", "vector", "utterance", "compare", "egemaps")
# What the cross-validation baseline beside every model (pipeline/crossval: eGeMAPS + RBF SVM) reads
BASELINE_INPUT = "egemaps"

# Models assembled from trained branches (each branch a model of the zoo with its own hyper-parameters), not built
FUSIONS = ("fusion",)
OPTIMIZERS = ("adam", "rmsprop")
WEIGHTS = ("imagenet", None)


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in MODEL_NAMES:
        raise ParamsError("model", f"{name!r} is not one of: {', '.join(MODEL_NAMES)}")
    return name


def get(name: str) -> ModuleType:
    """The module of model `name` (imported lazily; it does not import Keras until build())."""
    return importlib.import_module(f"{__name__}.{_check_name(name)}")


# Keras' default BatchNormalization momentum (0.99) needs several hundred steps before the moving
# statistics forget their initial values; a small corpus gives ~30 steps an epoch, so validation ran on
# stale statistics for ten epochs (constant predictions, early stopping on garbage). 0.9 tracks within
# an epoch. Applied to every BatchNormalization whose statistics training updates, not to frozen ones
# (a pretrained backbone's keep their ImageNet statistics and momentum: blocks.backbone).
BATCHNORM_MOMENTUM = 0.9


def build(name: str, input_shape: tuple, n_classes: int, hp: dict, norm=None):
    """Build model `name` (uncompiled) with the zoo-wide training settings applied."""
    import keras

    model = get(name).build(tuple(input_shape), n_classes, hp, norm=norm)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
            layer.momentum = BATCHNORM_MOMENTUM
    return model


def _all_layers(layer):
    for child in getattr(layer, "layers", []):
        yield child
        yield from _all_layers(child)


def input_kinds(name: str) -> tuple[str, ...]:
    """Every input model `name` reads, in the order its build() takes them: the module's INPUTS (a model
    that reads several, e.g. the image and the ComParE functionals) or its one INPUT. The render stage
    computes exactly these (plus the crossval baseline's and features.extra), so a module only declares them.
    Importing a model module does not import Keras."""
    module = get(name)
    kinds = tuple(getattr(module, "INPUTS", None) or (module.INPUT,))
    unknown = [k for k in kinds if k not in INPUT_KINDS]
    if unknown:
        raise ParamsError("model", f"model {name} reads {', '.join(unknown)}, not one of: {', '.join(INPUT_KINDS)}")
    return kinds


def input_kind(name: str) -> str:
    """What single-input model `name` reads: 'image', 'mfcc', 'vector', 'utterance', 'compare' or 'egemaps'
    (a model that reads several: input_kinds)."""
    kinds = input_kinds(name)
    if len(kinds) != 1:
        raise ValueError(f"model {name} reads several inputs ({', '.join(kinds)}): use zoo.input_kinds")
    return kinds[0]


def branches(name: str, hp: dict) -> dict[str, str]:
    """A fusion's {input kind: the model name of its branch}; {} for a model that is not a fusion."""
    module = get(name)
    return module.branches(hp) if hasattr(module, "branches") else {}


def _number(key: str, value, default):
    """Accept ints for float keys and YAML 1.1 strings such as '5e-5' (PyYAML reads them as str)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ParamsError(key, f"must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamsError(key, f"must be a number, got {value!r}")
    return float(value)


def _check_value(prefix: str, key: str, value, default, choices: dict):
    full = f"{prefix}.{key}"
    if key in choices:
        if value not in choices[key]:
            allowed = ", ".join("null" if c is None else str(c) for c in choices[key])
            raise ParamsError(full, f"{value!r} is not one of: {allowed}")
        return value
    if key == "weights":
        if value is None or value == "imagenet":
            return value
        if isinstance(value, str) and value.endswith(".h5"):
            return value  # a path to the application's `notop` weights file; checked by build()
        raise ParamsError(full, f"{value!r} is not one of: imagenet, null, or a path to a notop .h5 file")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParamsError(full, f"must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        lo = 1 if key in ("batch_size",) or "units" in key or "kernel" in key or "pool" in key else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ParamsError(full, f"must be an integer >= {lo}, got {value!r}")
        return value
    if isinstance(default, float):
        value = _number(full, value, default)
        if key == "learning_rate" and not value > 0:
            raise ParamsError(full, f"must be > 0, got {value!r}")
        if key.endswith("rate") and key != "learning_rate" and not 0 <= value < 1:
            raise ParamsError(full, f"must be in [0, 1), got {value!r}")
        if value < 0:
            raise ParamsError(full, f"must be >= 0, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if (not isinstance(value, (list, tuple)) or not value
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
            raise ParamsError(full, f"must be a non-empty list of positive integers, got {value!r}")
        return list(value)
    return value


def hyperparameters(name: str, overrides: dict | None = None) -> dict:
    """DEFAULTS of model `name` updated with params.yaml `models.<name>`; unknown keys and bad values
    raise ParamsError naming `models.<name>.<key>`."""
    module = get(name)
    prefix = f"models.{name}"
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise ParamsError(prefix, f"must be a mapping of hyper-parameters, got {overrides!r}")
    choices = {"optimizer": OPTIMIZERS, **getattr(module, "CHOICES", {})}
    hp = dict(module.DEFAULTS)
    for key, value in overrides.items():
        if key not in hp:
            from pipeline.params import unknown

            raise ParamsError(f"{prefix}.{key}", unknown(key, module.DEFAULTS, f"{name} has", "hyper-parameter"))
        if value is None and key in getattr(module, "NULLABLE", ()):  # null means something (module.check)
            hp[key] = None
            continue
        hp[key] = _check_value(prefix, key, value, module.DEFAULTS[key], choices)
    if hasattr(module, "check"):
        module.check(hp, prefix)
    return hp


def make_optimizer(hp: dict, decay_steps: int | None = None):
    """A fresh Keras optimizer from hp['optimizer'] ('adam' | 'rmsprop') and hp['learning_rate'];
    with `decay_steps`, the rate follows a cosine decay to 0 over that many steps; with hp['weight_decay'] (a
    model's own, e.g. cnn_pooled's), Adam becomes AdamW (decoupled weight decay, Loshchilov & Hutter 2019)."""
    import keras

    name = hp.get("optimizer", "adam")
    weight_decay = float(hp.get("weight_decay") or 0.0)
    lr = float(hp["learning_rate"])
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(lr, int(decay_steps))
    if name == "adam" and weight_decay:
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, weight_decay=weight_decay or None)
    raise ParamsError("optimizer", f"{name!r} is not one of: {', '.join(OPTIMIZERS)}")


def register_custom_objects() -> None:
    """Register the zoo's custom layers (package 'ser') so keras.saving.load_model finds them."""
    importlib.import_module(f"{__name__}.blocks")


def load_model(path, compile: bool = True):
    """keras.saving.load_model with the zoo's custom layers registered."""
    register_custom_objects()
    import keras

    return keras.saving.load_model(path, compile=compile)


def all_defaults() -> dict:
    return {name: dict(get(name).DEFAULTS) for name in MODEL_NAMES}


def defaults_yaml() -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # models share their head's lists: write each out, no &id001 anchors
            return True

    # one key per line, lists inline ([32, 64, 128]): how params.yaml is written
    Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
    return yaml.dump(all_defaults(), Dumper=Dumper, sort_keys=False, default_flow_style=False)


# The modules' DEFAULTS are the one source of the model hyper-parameters: params.yaml's `models:` section
# is written from them (python -m pipeline models --write-params), so DVC tracks and `-S models.x.y=...`
# overrides every value, and tests/test_defaults.py fails when the two differ.
def params_with_model_defaults(text: str) -> str:
    """params.yaml text with its `models:` section's body replaced by every model's DEFAULTS; the section's
    header line and comments, each model's and key's end-of-line comment, and everything outside the section
    are kept as they are."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("models:")), None)
    if start is None:
        raise ParamsError("models", "params.yaml has no `models:` section to write the defaults into")
    body = start + 1
    while body < len(lines) and lines[body].lstrip().startswith("#"):  # the header's comment lines
        body += 1
    end = body
    while end < len(lines) and (lines[end][:1] in (" ", "\t") or not lines[end].strip()):
        end += 1
    while end > body and not lines[end - 1].strip():  # blank lines before the next section stay
        end -= 1
    comments = _line_comments(lines[body:end])
    generated, model = [], None
    for line in defaults_yaml().splitlines():
        key = line.split(":", 1)[0].strip()
        if not line.startswith(" "):
            model, where = key, (key, None)
        else:
            where = (model, key)
        line = "  " + line
        if where in comments:
            column, comment = comments[where]
            line = line.ljust(column) if len(line) < column else line + "  "
            line += comment
        generated.append(line + "\n")
    return "".join(lines[:body]) + "".join(generated) + "".join(lines[end:])


def _line_comments(lines: list[str]) -> dict:
    """{(model, key or None): (column, '# comment')} of the end-of-line comments in a models: section body."""
    import re

    out, model = {}, None
    for line in lines:
        match = re.match(r"^(  |    )([A-Za-z0-9_]+):[^#]*?(\s*)(#.*)?$", line.rstrip("\n"))
        if not match:
            continue
        indent, key, _, comment = match.groups()
        if indent == "  ":
            model = key
        if comment:
            out[(model, None if indent == "  " else key)] = (line.index("#", len(indent) + len(key)), comment)
    return out


def main(argv=None) -> None:
    """`python -m pipeline models [--defaults | --write-params]`: list the zoo (no Keras import)."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m pipeline models", description="list the model zoo")
    parser.add_argument("--defaults", action="store_true",
                        help="print every model's default hyper-parameters as YAML (params.yaml `models:`)")
    parser.add_argument("--write-params", metavar="PARAMS", nargs="?", const="params.yaml",
                        help="rewrite PARAMS' `models:` section from the models' DEFAULTS (default: params.yaml)")
    args = parser.parse_args(argv)
    if args.defaults:
        sys.stdout.write(defaults_yaml())
        return
    if args.write_params:
        path = Path(args.write_params)
        if not path.is_file():
            raise ParamsError(str(path), "file not found")
        text = path.read_text()
        updated = params_with_model_defaults(text)
        if updated != text:
            path.write_text(updated)
        print(f"{path}: models section {'rewritten from' if updated != text else 'already equals'} "
              "the models' DEFAULTS")
        return
    rows = [("model", "input", "lr", "batch", "description")]
    for name in MODEL_NAMES:
        module = get(name)
        doc = (module.__doc__ or "").strip().splitlines()
        lr, batch = module.DEFAULTS.get("learning_rate"), module.DEFAULTS.get("batch_size")
        rows.append((name, " + ".join(input_kinds(name)), "-" if lr is None else f"{lr:g}",
                     "-" if batch is None else str(batch), doc[0] if doc else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])

