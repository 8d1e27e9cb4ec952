"""Shared building blocks of the zoo: inputs, conv blocks, heads, custom layers, pretrained backbones.

Pure Keras 3 (keras.layers / keras.ops / keras.applications): the models build and run on the
TensorFlow, JAX and PyTorch backends. Custom layers are registered under the package 'ser' and
implement get_config, so `model.keras` files reload with keras.saving.load_model once this module
is imported (pipeline.zoo.load_model does that).

Image convention: a spectrogram image is (height, width, channels) with height = mel bins and
width = time frames, values in 0..1.
"""
from __future__ import annotations

import os
import warnings

import keras
import numpy as np
from keras import layers, ops

from pipeline.errors import ParamsError, UserError


# --------------------------------------------------------------------------- hyper-parameter helpers
def regularizer(hp: dict):
    """L2 kernel regulariser from hp['l2'] (0 = none: the 'no L2' ablation)."""
    value = float(hp.get("l2") or 0.0)
    return keras.regularizers.L2(value) if value > 0 else None


def dropout(x, hp: dict, rate: float | None = None):
    """Dropout at hp['dropout_rate'] unless hp['dropout'] is false (the 'no dropout' ablation)."""
    rate = hp.get("dropout_rate", 0.0) if rate is None else rate
    if hp.get("dropout", True) and rate > 0:
        x = layers.Dropout(rate)(x)
    return x


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --------------------------------------------------------------------------- inputs
def normalization(input_shape: tuple, norm: tuple, name: str = "normalize") -> layers.Normalization:
    """A Normalization layer holding (mean, variance), so the saved model is self-contained.

    The statistics align with the trailing axes of the input shape (without batch; trailing size-1
    axes may be left out): a scalar, one value per feature ((length,) for vectors), per MFCC
    coefficient ((n_mfcc,) or (n_mfcc, 1) for (frames, n_mfcc, 1)) or per element (the input shape).
    """
    mean, variance = (np.asarray(a, dtype="float32") for a in norm)
    if mean.shape != variance.shape:
        raise ValueError(f"norm mean {mean.shape} and variance {variance.shape} differ in shape")
    shape = tuple(input_shape)
    while mean.ndim > len(shape) and mean.shape[0] == 1:
        mean, variance = mean[0], variance[0]
    if mean.ndim > len(shape):
        raise ValueError(f"norm statistics of shape {mean.shape} do not fit input shape {shape}")
    axes = None
    # right-aligned, or aligned before trailing size-1 axes: (n_mfcc,) fits (frames, n_mfcc, 1)
    for offset in range(len(shape) - mean.ndim, -1, -1):
        if any(d != 1 for d in shape[offset + mean.ndim:]):
            break
        if all(m == 1 or m == shape[offset + i] for i, m in enumerate(mean.shape)):
            axes = [offset + i + 1 for i, m in enumerate(mean.shape) if m != 1]  # + 1: the batch axis
            break
    if axes is None:
        raise ValueError(f"norm statistics of shape {mean.shape} do not fit input shape {shape}")
    kept = [s for s in mean.shape if s != 1]
    if not axes:
        return layers.Normalization(axis=None, mean=float(mean.reshape(())),
                                    variance=float(variance.reshape(())), name=name)
    return layers.Normalization(axis=tuple(axes), mean=mean.reshape(kept),
                                variance=variance.reshape(kept), name=name)


def model_input(kind: str, input_shape: tuple, norm=None):
    """(keras.Input named after the input kind, tensor after the optional Normalization)."""
    inputs = keras.Input(shape=tuple(input_shape), name=kind)
    x = inputs
    if norm is not None:
        if kind == "image":
            raise ValueError("image inputs are scaled to 0..1 by the input pipeline; pass norm=None")
        x = normalization(input_shape, norm)(x)
    return inputs, x


def classifier(x, n_classes: int):
    """The softmax output, kept in float32 under a mixed-precision policy."""
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="emotion")(x)


# --------------------------------------------------------------------------- conv / recurrent blocks
def conv2d_blocks(x, hp: dict):
    """Paper A's blocks: per filter count, Conv2D kxk ReLU (L2) -> BatchNorm -> MaxPool2D 2 -> Dropout."""
    for filters in as_list(hp["filters"]):
        x = layers.Conv2D(filters, hp.get("kernel_size", 3), padding="same", activation="relu",
                          kernel_regularizer=regularizer(hp))(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
        x = dropout(x, hp)
    return x


def to_sequence(x):
    """(batch, height, width, channels) feature map -> (batch, width, height * channels): one step per
    time column of the spectrogram (width is time)."""
    _, height, width, channels = x.shape
    if height is None or width is None or channels is None:
        raise ValueError(f"a fixed input size is needed to read the feature map as a sequence, got {x.shape}")
    x = layers.Permute((2, 1, 3))(x)
    return layers.Reshape((width, height * channels))(x)


def lstm(units: int, return_sequences: bool = False, bidirectional: bool = False):
    """An LSTM layer (optionally bidirectional) that computes in float32 even under a mixed-precision
    policy: JAX's cuDNN RNN kernel rejects float16, and the recurrent state drifts in half precision.
    Keras casts its inputs to float32; the convolutions around it keep the mixed policy."""
    policy = keras.config.dtype_policy()
    dtype = "float32" if policy.compute_dtype != policy.variable_dtype else None
    layer = layers.LSTM(units, return_sequences=return_sequences, dtype=dtype)
    return layers.Bidirectional(layer, dtype=dtype) if bidirectional else layer


def time_pooling(x, pooling: str):
    """A recurrent layer's outputs -> one vector: 'last' passes the final state through (the layer returned
    no sequence), 'avg' averages the sequence over time. The mean weighs every frame alike, so what the
    head learns does not hang on where the utterance ends in the padded window."""
    return layers.GlobalAveragePooling1D()(x) if pooling == "avg" else x


def dense_layers(x, hp: dict, units, batch_norm: bool = False):
    """Dense ReLU (L2) [-> BatchNorm] -> Dropout for each entry of `units`."""
    for n in as_list(units):
        x = layers.Dense(n, activation="relu", kernel_regularizer=regularizer(hp))(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = dropout(x, hp)
    return x


@keras.saving.register_keras_serializable(package="ser")
class AttentionPooling(layers.Layer):
    """Additive (Bahdanau-style) attention pooling over time.

    score_t = v . tanh(W h_t + b); alpha = softmax_t(score); output = sum_t alpha_t h_t.
    (batch, time, features) -> (batch, features).
    """

    def __init__(self, units: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        features = input_shape[-1]
        self.w = self.add_weight(name="w", shape=(features, self.units), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units, 1), initializer="glorot_uniform")

    def call(self, inputs):
        score = ops.matmul(ops.tanh(ops.matmul(inputs, self.w) + self.b), self.v)  # (batch, time, 1)
        alpha = ops.softmax(ops.cast(score, "float32"), axis=1)
        return ops.sum(ops.cast(alpha, inputs.dtype) * inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


# --------------------------------------------------------------------------- ImageNet backbones
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="ser")
class ImageNetPreprocess(layers.Layer):
    """0..1 images -> what a keras.applications backbone expects; 1-channel gray is repeated to RGB.

    mode 'caffe' (VGG, ResNet): x*255, RGB->BGR, minus the ImageNet mean; 'torch' (DenseNet):
    (x - mean) / std; 'tf' (MobileNet): x*2 - 1; 'none': the channels only (a backbone trained from scratch
    reads the input as it is: a normalised native spectrogram is no 0..1 photograph).
    """

    MODES = ("caffe", "torch", "tf", "none")

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def call(self, x):
        if x.shape[-1] == 1:
            x = ops.repeat(x, 3, axis=-1)
        if self.mode == "none":
            return x
        dtype = x.dtype
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(np.array(_CAFFE_MEAN_BGR, "float32"), dtype=dtype)
            return ops.flip(x, axis=-1) * ops.cast(255.0, dtype) - mean
        if self.mode == "torch":
            mean = ops.convert_to_tensor(np.array(_TORCH_MEAN, "float32"), dtype=dtype)
            std = ops.convert_to_tensor(np.array(_TORCH_STD, "float32"), dtype=dtype)
            return (x - mean) / std
        return x * ops.cast(2.0, dtype) - ops.cast(1.0, dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def keras_cache_dir() -> str:
    """The folder keras.utils.get_file caches application weights in (cache_subdir 'models')."""
    try:
        from keras.src.backend.config import keras_home  # private, but what get_file uses
        base = keras_home()
    except Exception:  # pragma: no cover - older / newer Keras layouts
        base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    base = os.path.expanduser(base)
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return os.path.join(base, "models")


def _download_failed(exc: Exception) -> bool:
    text = str(exc)
    return "URL fetch failure" in text or isinstance(exc, OSError) or "urlopen" in text


def backbone(name: str, application: str, weights_file: str, weights_url: str,
             input_shape: tuple, hp: dict):
    """keras.applications.<application>(include_top=False) on a 3-channel input of input_shape's size.

    hp['weights']: 'imagenet' (downloaded by Keras and cached; offline and not cached -> UserError
    naming the file and folder), null (from scratch), or a path to the notop .h5 file. With weights,
    the first hp['frozen_layers'] layers and every BatchNormalization are frozen; from scratch nothing is.
    """
    app = getattr(keras.applications, application)
    weights = hp.get("weights")
    height, width = input_shape[0], input_shape[1]
    if weights not in ("imagenet", None) and not os.path.isfile(weights):
        raise UserError(f"params.yaml: models.{name}.weights: {weights!r} is not a file "
                        f"(use imagenet, null, or the path to {weights_file})")
    kwargs = dict(include_top=False, weights=weights, input_shape=(height, width, 3), name="backbone")
    if application.startswith("MobileNetV3"):
        kwargs["include_preprocessing"] = False  # ImageNetPreprocess does it
    try:
        with warnings.catch_warnings():  # MobileNetV3: "rows is not 224 ... weights for 224 loaded"
            warnings.filterwarnings("ignore", message=".*input_shape.*")
            base = app(**kwargs)
    except Exception as exc:
        if weights != "imagenet":
            raise
        folder = keras_cache_dir()
        cached = os.path.join(folder, weights_file)
        if not os.path.exists(cached) and _download_failed(exc):
            raise UserError(
                f"ImageNet weights for {name} are not cached and the download failed (offline?): "
                f"put {weights_file} (from {weights_url}{weights_file}) in {folder}/ "
                f"or set models.{name}.weights: null to train from scratch") from None
        if os.path.exists(cached):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"ImageNet weights for {name} in {cached} could not be loaded ({first}): "
                            f"delete the file so Keras downloads it again, or set models.{name}.weights: null") from None
        raise
    if weights is not None:
        for layer in base.layers[: int(hp.get("frozen_layers", 0))]:
            layer.trainable = False
        # Keras' fine-tuning recipe: a pretrained backbone's BatchNorm layers stay in inference mode, so
        # they normalise with the ImageNet statistics instead of re-estimating them from small batches of
        # spectrograms. A frozen BatchNormalization runs in inference mode in Keras 3; calling the backbone
        # with training=False would not do it, as a functional model passes fit's training=True on to
        # nested models (keras/src/models/functional.py, operation_fn). zoo.build leaves their momentum.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    return base


def pretrained_model(name: str, application: str, preprocess: str, weights_file: str, weights_url: str,
                     input_shape: tuple, n_classes: int, hp: dict) -> keras.Model:
    """Paper A's transfer-learning model: backbone -> pooling -> [Dense ReLU L2 -> BN -> Dropout] x N -> softmax."""
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise UserError(f"{name} needs (height, width, 1 or 3) images, got input shape {input_shape}")
    base = backbone(name, application, weights_file, weights_url, input_shape, hp)
    inputs = keras.Input(shape=input_shape, name="image")
    # ImageNet's input statistics only mean something to ImageNet weights
    x = ImageNetPreprocess(preprocess if hp.get("weights") else "none", name="imagenet_preprocess")(inputs)
    x = base(x)
    pooling = hp.get("pooling", "flatten")
    x = layers.GlobalAveragePooling2D()(x) if pooling == "avg" else layers.Flatten()(x)
    x = dense_layers(x, hp, hp["dense_units"], batch_norm=True)
    return keras.Model(inputs, classifier(x, n_classes), name=name)


def check_lengths(name: str, hp: dict, *keys: str) -> None:
    lengths = {k: len(as_list(hp[k])) for k in keys}
    if len(set(lengths.values())) > 1:
        raise ParamsError(f"models.{name}.{keys[1]}",
                          f"needs one entry per {keys[0]} ({lengths[keys[0]]}), got {lengths[keys[1]]}")


def log_probs(probs):
    """log of probabilities, floored at float32's smallest normal number: a probability of exactly 0 stays
    finite in the log (the geometric fusion, the prior correction)."""
    return ops.log(ops.maximum(ops.cast(probs, "float32"), float(np.finfo(np.float32).tiny)))


@keras.saving.register_keras_serializable(package="ser")
class WeightedAverage(layers.Layer):
    """Late fusion of two branches' probabilities, the first's weight w fixed: w * first + (1 - w) * second
    (`geometric` false), or their weighted geometric mean, first^w * second^(1 - w) renormalised to sum to 1
    (`geometric` true: the product of the two views' evidence)."""

    def __init__(self, weight: float = 0.5, geometric: bool = False, **kwargs):
        super().__init__(dtype=kwargs.pop("dtype", "float32"), **kwargs)
        self.weight = float(weight)
        self.geometric = bool(geometric)

    def call(self, inputs):
        first, second = (ops.cast(t, "float32") for t in inputs)
        if not self.geometric:
            return first * self.weight + second * (1.0 - self.weight)
        return ops.softmax(log_probs(first) * self.weight + log_probs(second) * (1.0 - self.weight), axis=-1)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "geometric": self.geometric}


@keras.saving.register_keras_serializable(package="ser")
class PriorCorrection(layers.Layer):
    """A trained model's probabilities divided by its training set's class frequencies and renormalised: the
    probabilities as if every class were equally common. A model trained on a corpus where anger is common
    learns that anger is common; UAR (the mean of per-class recalls) counts every class alike, and the decision
    that maximises it is the posterior over the prior (post-hoc logit adjustment: Menon et al., 2021, "Long-tail
    learning via logit adjustment"). Applied after training, so the loss is the plain cross-entropy."""

    def __init__(self, prior, **kwargs):
        super().__init__(dtype=kwargs.pop("dtype", "float32"), **kwargs)
        self.prior = [float(v) for v in prior]

    def call(self, probs):
        log_prior = ops.convert_to_tensor(np.log(np.asarray(self.prior, np.float32)))
        return ops.softmax(log_probs(probs) - log_prior, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "prior": self.prior}


def divide_by_prior(model, prior):
    """The trained `model` (one input, one softmax output) with PriorCorrection(prior) on its output: the same
    layers and weights, one more layer."""
    (inputs,), (probs,) = model.inputs, model.outputs
    return keras.Model(inputs, PriorCorrection(prior, name="prior_correction")(probs), name=model.name)


def time_mean(x):
    """(batch, bands, frames, channels) -> (batch, bands * channels): the mean over the time axis, each band's
    channels kept apart (position in time dropped, position in frequency kept), with built-in layers only."""
    _, bands, frames, channels = x.shape
    x = layers.AveragePooling2D(pool_size=(1, frames))(x)
    return layers.Flatten()(x)


def frequency_mean(x):
    """(batch, bands, frames, channels) -> (batch, frames, channels): the mean over the frequency axis, with
    built-in layers only (an average pool as tall as the map), so saved models reload without custom code."""
    _, bands, frames, channels = x.shape
    x = layers.AveragePooling2D(pool_size=(bands, 1))(x)
    return layers.Reshape((frames, channels))(x)
