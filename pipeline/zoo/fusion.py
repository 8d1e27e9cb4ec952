"""Late fusion of a spectrogram model and the utterance functionals: each branch trained on its own input with
its own settings (models.<image_model>, models.functionals), then their class probabilities combined with the
image branch's weight. The two views of an utterance err differently (learned time-frequency patterns, fixed
prosodic and spectral statistics), so their combination can beat either.

`combine: product` (the default since 2026-12-04) multiplies the two distributions, each raised to its weight,
and renormalises (a weighted geometric mean): two views of the same clip that err independently given the emotion
multiply their evidence, by Bayes' rule, and a class one branch all but rules out stays ruled out. `mean` averages
them (the rule for a mixture: one of the two is right). Chosen on validation speakers (docs/recipe.md, Fusion).

The weight is an even mix (0.5) by default; `weight: null` chooses it per training on the validation speakers
(pipeline/train.py fusion_weight). The even mix was chosen on validation speakers (docs/recipe.md, Fusion):
a weight chosen on one fold's few validation speakers did worse on other folds' validation speakers than the
even mix, because a choice among 21 weights on one or two people is noisier than the gain it is after; with
many validation speakers, choosing may pay (averaging a much weaker view into a stronger one can also hurt).

One Keras model of two inputs comes out (`image`, `compare`): predict and export treat it like any other.
"""
from __future__ import annotations

import numpy as np

from pipeline.errors import ParamsError

NAME = "fusion"
INPUTS = ("image", "compare")
FEATURES_MODEL = "functionals"
COMBINES = ("product", "mean")
DEFAULTS = {
    "image_model": "cnn_pooled",  # the spectrogram branch: any image model of the zoo (models.<name> applies)
    "weight": 0.5,                   # the image branch's share of the probabilities; null = chosen on validation
    "combine": "product",            # product: weighted geometric mean of the probabilities | mean: weighted mean
}
NULLABLE = ("weight",)  # null: chosen on validation


def check(hp: dict, prefix: str) -> None:
    from pipeline import zoo

    images = [n for n in zoo.MODEL_NAMES if n not in zoo.FUSIONS and zoo.input_kinds(n) == ("image",)]
    if hp["image_model"] not in images:
        raise ParamsError(f"{prefix}.image_model", f"{hp['image_model']!r} is not one of: {', '.join(images)}")
    if hp["combine"] not in COMBINES:
        raise ParamsError(f"{prefix}.combine", f"{hp['combine']!r} is not one of: {', '.join(COMBINES)}")
    w = hp["weight"]
    if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 1):
        raise ParamsError(f"{prefix}.weight", f"must be null (chosen on validation) or a number in [0, 1], got {w!r}")


def branches(hp: dict) -> dict[str, str]:
    return {"image": hp["image_model"], "compare": FEATURES_MODEL}


def build(input_shape, n_classes: int, hp: dict, norm=None):
    raise ParamsError("model", "fusion is assembled from its trained branches (pipeline/train.py), not built")


def combine(image_weight: float, p_image: np.ndarray, p_features: np.ndarray,
            how: str = DEFAULTS["combine"]) -> np.ndarray:
    """The fused probabilities of two branches' (rows, classes) probabilities, as the assembled model's output
    layer computes them (numpy, for choosing the weight on validation rows and for the bench scripts)."""
    p_image, p_features = np.asarray(p_image, np.float64), np.asarray(p_features, np.float64)
    if how == "mean":
        return image_weight * p_image + (1.0 - image_weight) * p_features
    tiny = np.finfo(np.float32).tiny
    logits = (image_weight * np.log(np.maximum(p_image, tiny))
              + (1.0 - image_weight) * np.log(np.maximum(p_features, tiny)))
    fused = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return fused / fused.sum(axis=-1, keepdims=True)


def assemble(models: dict, image_weight: float, how: str = DEFAULTS["combine"]):
    """{input kind: trained branch model} -> one model of those inputs whose output is the branches'
    probabilities fused by `how` (combine) with the image branch's weight."""
    import keras

    from pipeline.zoo.blocks import WeightedAverage

    inputs = {kind: keras.Input(shape=m.input_shape[1:], name=kind) for kind, m in models.items()}
    probs = [models["image"](inputs["image"]), models["compare"](inputs["compare"])]
    out = WeightedAverage(image_weight, geometric=how == "product", name="emotion")(probs)
    return keras.Model(inputs, out, name=NAME)
