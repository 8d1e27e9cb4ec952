"""Late fusion of a spectrogram model and the utterance functionals: each branch trained on its own input with
its own settings (models.<image_model>, models.functionals), then their class probabilities averaged with the
image branch's weight. The two views of an utterance err differently (learned time-frequency patterns, fixed
prosodic and spectral statistics), so their average can beat either.

The weight is an even mix (0.5) by default; `weight: null` chooses it per training on the validation speakers
(pipeline/train.py fusion_weight). The even mix was chosen on validation speakers (docs/recipe.md, Fusion):
a weight chosen on one fold's few validation speakers did worse on other folds' validation speakers than the
even mix, because a choice among 21 weights on one or two people is noisier than the gain it is after; with
many validation speakers, choosing may pay (averaging a much weaker view into a stronger one can also hurt).

One Keras model of two inputs comes out (`image`, `compare`): predict and export treat it like any other.
"""
from __future__ import annotations

from pipeline.errors import ParamsError

NAME = "fusion"
INPUTS = ("image", "compare")
FEATURES_MODEL = "functionals"
DEFAULTS = {
    "image_model": "cnn_pooled",  # the spectrogram branch: any image model of the zoo (models.<name> applies)
    "weight": 0.5,                   # the image branch's share of the probabilities; null = chosen on validation
}
NULLABLE = ("weight",)  # null: chosen on validation


def check(hp: dict, prefix: str) -> None:
    from pipeline import zoo

    images = [n for n in zoo.MODEL_NAMES if n not in zoo.FUSIONS and zoo.input_kinds(n) == ("image",)]
    if hp["image_model"] not in images:
        raise ParamsError(f"{prefix}.image_model", f"{hp['image_model']!r} is not one of: {', '.join(images)}")
    w = hp["weight"]
    if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1):
        raise ParamsError(f"{prefix}.weight", f"must be null (chosen on validation) or a number in [0, 1], got {w!r}")


def branches(hp: dict) -> dict[str, str]:
    return {"image": hp["image_model"], "compare": FEATURES_MODEL}


def build(input_shape, n_classes: int, hp: dict, norm=None):
    raise ParamsError("model", "fusion is assembled from its trained branches (pipeline/train.py), not built")


def assemble(models: dict, image_weight: float):
    """{input kind: trained branch model} -> one model of those inputs whose output is the weighted average of
    the branches' probabilities."""
    import keras

    from pipeline.zoo.blocks import WeightedAverage

    inputs = {kind: keras.Input(shape=m.input_shape[1:], name=kind) for kind, m in models.items()}
    probs = [models["image"](inputs["image"]), models["compare"](inputs["compare"])]
    out = WeightedAverage(image_weight, name="emotion")(probs)
    return keras.Model(inputs, out, name=NAME)
