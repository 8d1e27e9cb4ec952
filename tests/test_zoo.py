"""Model zoo: every model builds, trains one step, saves and reloads; registry and params checks;
the offline ImageNet error. Tiny inputs so the file runs in a few minutes on 2 CPU cores."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import numpy as np
import pytest

from pipeline import zoo
from pipeline.errors import ParamsError, UserError

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ("vgg19", "resnet50", "mobilenetv3large", "densenet121")
# Tiny inputs of each kind; 32x32 is the smallest size keras.applications accepts.
SHAPES = {"image": (32, 32, 3), "mfcc": (16, 8, 1), "vector": (48,), "utterance": (20,), "compare": (64,),
          "egemaps": (88,)}
N_CLASSES = 4


def _norm(kind: str, shape: tuple):
    """Statistics as the train stage would pass them: per feature / per MFCC coefficient."""
    if kind == "image":
        return None
    rng = np.random.default_rng(1)
    stats_shape = (shape[1],) if kind == "mfcc" else shape
    return rng.normal(size=stats_shape).astype("float32"), rng.uniform(0.5, 2.0, size=stats_shape).astype("float32")


def _data(shape: tuple, n: int = 4):
    rng = np.random.default_rng(0)
    x = rng.random((n, *shape), dtype=np.float32)
    y = np.eye(N_CLASSES, dtype="float32")[np.arange(n) % N_CLASSES]
    return x, y


BUILT = [n for n in zoo.MODEL_NAMES if n not in zoo.FUSIONS]


@pytest.mark.parametrize("name", BUILT)
def test_model_builds_trains_saves_and_reloads(name, tmp_path):
    _build_train_save_reload(name, {"weights": None} if "weights" in zoo.get(name).DEFAULTS else None, tmp_path)


# The papers' models with a pooled head instead of the flattened map or the LSTM's final state (the spectrogram
# recipe's option, docs/recipe.md): the same layers, read out position-free.
@pytest.mark.parametrize("name", ["cnn", "lstm", "cnn_lstm", "cnn_blstm"])
def test_papers_models_with_a_pooled_head_build_train_and_reload(name, tmp_path):
    model = _build_train_save_reload(name, {"pooling": "avg"}, tmp_path)
    pooling = "GlobalAveragePooling2D" if name == "cnn" else "GlobalAveragePooling1D"
    assert pooling in {type(layer).__name__ for layer in model.layers}
    assert "Flatten" not in {type(layer).__name__ for layer in model.layers}


def _build_train_save_reload(name, overrides, tmp_path):
    keras = pytest.importorskip("keras")
    module = zoo.get(name)
    assert module.NAME == name and module.INPUT == zoo.input_kind(name) in zoo.INPUT_KINDS
    hp = zoo.hyperparameters(name, overrides)
    shape = SHAPES[module.INPUT]
    model = zoo.build(name, shape, N_CLASSES, hp, _norm(module.INPUT, shape))
    assert model.inputs[0].name == module.INPUT  # named input
    assert tuple(model.output_shape) == (None, N_CLASSES)

    # Tracing the train step of the big backbones takes minutes on 2 cores: run eagerly, except for
    # the attention model, which also checks that the custom layer traces into a graph.
    model.compile(optimizer=zoo.make_optimizer(hp), loss="categorical_crossentropy", jit_compile=False,
                  run_eagerly=name != "cnn_blstm_attention")
    x, y = _data(shape)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    before = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(before.sum(axis=1), 1.0, rtol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    after = keras.ops.convert_to_numpy(reloaded(x, training=False))
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
    return model


def test_normalization_layer_uses_the_given_statistics():
    keras = pytest.importorskip("keras")
    from pipeline.zoo.blocks import normalization

    x = np.random.default_rng(3).random((2, 16, 8, 1), dtype=np.float32)
    mean, variance = np.arange(8, dtype="float32"), np.full(8, 4.0, "float32")
    for stats in ((mean, variance), (mean[:, None], variance[:, None])):
        out = keras.ops.convert_to_numpy(normalization((16, 8, 1), stats)(x))
        np.testing.assert_allclose(out, (x - mean[:, None]) / 2.0, rtol=1e-5, atol=1e-6)
    out = keras.ops.convert_to_numpy(normalization((16, 8, 1), (1.0, 4.0))(x))
    np.testing.assert_allclose(out, (x - 1.0) / 2.0, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        normalization((16, 8, 1), (np.zeros(5), np.ones(5)))


def test_dropout_and_l2_ablations_remove_layers_and_penalties():
    pytest.importorskip("keras")
    hp = zoo.hyperparameters("cnn_blstm_attention", {"dropout": False, "l2": 0})
    model = zoo.get("cnn_blstm_attention").build(SHAPES["image"], N_CLASSES, hp)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "Dropout" not in kinds and "AttentionPooling" in kinds and "Bidirectional" in kinds
    assert not model.losses
    full = zoo.get("cnn_blstm_attention").build(SHAPES["image"], N_CLASSES,
                                                zoo.hyperparameters("cnn_blstm_attention"))
    assert "Dropout" in {type(layer).__name__ for layer in full.layers} and full.losses


def test_pretrained_gray_input_and_frozen_layers_with_a_local_weights_file(tmp_path):
    keras = pytest.importorskip("keras")
    # A notop weights file of the right architecture, as a user would put in place offline.
    weights = tmp_path / "vgg19_notop.weights.h5"
    keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(weights)
    hp = zoo.hyperparameters("vgg19", {"weights": str(weights), "dense_units": [8, 4]})
    model = zoo.get("vgg19").build((32, 32, 1), N_CLASSES, hp)  # gray: repeated to RGB in the model
    base = model.get_layer("backbone")
    assert [layer.trainable for layer in base.layers[:15]] == [False] * 15
    assert all(layer.trainable for layer in base.layers[15:] if layer.weights)
    x, _ = _data((32, 32, 1), n=2)
    assert tuple(model(x).shape) == (2, N_CLASSES)

    missing = zoo.hyperparameters("vgg19", {"weights": str(tmp_path / "nope.h5")})
    with pytest.raises(UserError, match="models.vgg19.weights"):
        zoo.get("vgg19").build((32, 32, 3), N_CLASSES, missing)


# The backbones with BatchNorm (VGG19 has none; its frozen layers are checked above, at 20 s less).
APPLICATIONS = {"resnet50": "ResNet50", "mobilenetv3large": "MobileNetV3Large", "densenet121": "DenseNet121"}


def _values(layers) -> dict:
    import keras

    return {f"{layer.name}/{i}": keras.ops.convert_to_numpy(w).copy()
            for layer in layers for i, w in enumerate(layer.weights)}


@pytest.mark.parametrize("name", APPLICATIONS)
def test_pretrained_backbone_trains_in_inference_mode_and_keeps_its_batchnorm(name, tmp_path):
    """Frozen layers keep their weights; the backbone's BatchNorm layers run in inference mode and keep
    their statistics and momentum (only the head's get zoo.build's 0.9); the unfrozen backbone layers
    still learn; the same after a save and reload (train's resume)."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)  # unseeded, a random ResNet50 on 32x32 now and then gave its unfrozen layers no gradient
    app = getattr(keras.applications, APPLICATIONS[name])
    kwargs = {"include_preprocessing": False} if name == "mobilenetv3large" else {}
    reference = app(include_top=False, weights=None, input_shape=(32, 32, 3), **kwargs)
    weights = tmp_path / f"{name}_notop.weights.h5"
    reference.save_weights(weights)
    momentum = {layer.name: layer.momentum for layer in reference.layers
                if isinstance(layer, keras.layers.BatchNormalization)}
    hp = zoo.hyperparameters(name, {"weights": str(weights), "dense_units": [8], "frozen_layers": 15})
    model = zoo.build(name, (32, 32, 1), N_CLASSES, hp)
    base = model.get_layer("backbone")
    frozen, unfrozen = base.layers[:15], [layer for layer in base.layers[15:] if layer.trainable_weights]
    batchnorm = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    head_bn = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {layer.name: layer.momentum for layer in batchnorm} == momentum
    assert head_bn and all(layer.momentum == zoo.BATCHNORM_MOMENTUM for layer in head_bn)

    x, y = _data((32, 32, 1), n=4)
    for step in range(2):
        if step:  # the second step on the saved and reloaded model, as a resumed training runs
            model.save(tmp_path / "model.keras")
            model = keras.saving.load_model(tmp_path / "model.keras")
            base = model.get_layer("backbone")
            frozen, batchnorm = base.layers[:15], [base.get_layer(layer.name) for layer in batchnorm]
            unfrozen = [base.get_layer(layer.name) for layer in unfrozen]
            head_bn = [model.get_layer(layer.name) for layer in head_bn]
        kept, stats, learnt, head = (_values(frozen), _values(batchnorm), _values(unfrozen),
                                     _values(head_bn))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy", run_eagerly=True)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        for key, value in _values(frozen).items():
            np.testing.assert_array_equal(value, kept[key], err_msg=key)
        for key, value in _values(batchnorm).items():  # gamma, beta, moving mean and variance
            np.testing.assert_array_equal(value, stats[key], err_msg=key)
        assert any(not np.array_equal(value, learnt[key]) for key, value in _values(unfrozen).items())
        assert any(not np.array_equal(value, head[key]) for key, value in _values(head_bn).items()
                   if "/2" in key or "/3" in key)  # the head's statistics do update
        assert {layer.name: layer.momentum for layer in batchnorm} == momentum


def test_imagenet_preprocess_matches_keras_applications():
    keras = pytest.importorskip("keras")
    from pipeline.zoo.blocks import ImageNetPreprocess

    x = np.random.default_rng(2).random((2, 4, 4, 3), dtype=np.float32)
    apps = keras.applications
    for mode, reference in (("caffe", apps.vgg19.preprocess_input), ("torch", apps.densenet.preprocess_input),
                            ("tf", apps.mobilenet_v2.preprocess_input)):
        ours = keras.ops.convert_to_numpy(ImageNetPreprocess(mode)(x))
        np.testing.assert_allclose(ours, reference(x * 255.0), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", PRETRAINED)
def test_offline_imagenet_weights_give_one_clear_user_error(name, monkeypatch):
    """For real: the download goes through a proxy that refuses connections, so this also holds on a
    machine that is online. Skipped where the weights are already cached (nothing to download)."""
    pytest.importorskip("keras")
    from pipeline.zoo.blocks import keras_cache_dir

    module = zoo.get(name)
    if (Path(keras_cache_dir()) / module.WEIGHTS_FILE).exists():
        pytest.skip(f"{module.WEIGHTS_FILE} is cached on this machine")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(UserError) as info:
        module.build((32, 32, 3), N_CLASSES, zoo.hyperparameters(name))
    message = str(info.value)
    assert "\n" not in message
    assert module.WEIGHTS_FILE in message and keras_cache_dir() in message
    assert f"models.{name}.weights: null" in message


def test_unknown_model_is_a_params_error_listing_the_names():
    with pytest.raises(ParamsError) as info:
        zoo.get("transformer")
    assert info.value.key == "model"
    assert "'transformer' is not one of: cnn, lstm, cnn_lstm" in str(info.value)
    with pytest.raises(ParamsError):
        zoo.hyperparameters("transformer", {})


def test_hyperparameters_merge_and_check():
    hp = zoo.hyperparameters("vgg19", {"learning_rate": "1e-4", "weights": None, "dropout": False})
    assert hp["learning_rate"] == pytest.approx(1e-4) and hp["weights"] is None and hp["dropout"] is False
    assert hp["batch_size"] == 16 and hp["frozen_layers"] == 15
    assert zoo.hyperparameters("cnn", None) == zoo.get("cnn").DEFAULTS
    assert zoo.get("cnn").DEFAULTS["l2"] == 0.01  # merging does not mutate the defaults
    # a fusion's weight: an even mix unless set; null = chosen on the validation speakers
    assert zoo.hyperparameters("fusion", {})["weight"] == 0.5
    assert zoo.hyperparameters("fusion", {"weight": None})["weight"] is None
    assert zoo.hyperparameters("fusion", {"weight": 1})["weight"] == 1.0

    with pytest.raises(ParamsError) as info:
        zoo.hyperparameters("cnn_blstm_attention", {"lstm_unit": 64})
    assert info.value.key == "models.cnn_blstm_attention.lstm_unit"
    assert "lstm_units" in str(info.value)
    bad = [("cnn", {"optimizer": "sgdx"}, "optimizer"), ("cnn", {"dropout": "yes"}, "dropout"),
           ("cnn", {"batch_size": 0}, "batch_size"), ("cnn", {"dropout_rate": 1.5}, "dropout_rate"),
           ("cnn", {"learning_rate": 0}, "learning_rate"), ("cnn", {"filters": [32, "x"]}, "filters"),
           ("vgg19", {"weights": "places365"}, "weights"), ("cnn", {"pooling": "max"}, "pooling"),
           ("lstm", {"pooling": "flatten"}, "pooling"), ("fusion", {"weight": 1.5}, "weight"),
           ("fusion", {"weight": "half"}, "weight"), ("cnn", {"l2": None}, "l2")]
    for name, overrides, key in bad:
        with pytest.raises(ParamsError) as info:
            zoo.hyperparameters(name, overrides)
        assert info.value.key == f"models.{name}.{key}", overrides
    with pytest.raises(ParamsError, match="models.mlp"):
        zoo.hyperparameters("mlp", [1, 2])


def test_fusion_combines_its_trained_branches_with_the_chosen_weight(tmp_path):
    keras = pytest.importorskip("keras")
    from pipeline.zoo import fusion

    hp = zoo.hyperparameters("fusion", {"image_model": "cnn_pooled"})
    assert zoo.branches("fusion", hp) == {"image": "cnn_pooled", "compare": "functionals"}
    assert hp["combine"] == "product"
    image = zoo.build("cnn_pooled", (16, 24, 1), N_CLASSES, zoo.hyperparameters("cnn_pooled", {}))
    feats = zoo.build("functionals", (64,), N_CLASSES, zoo.hyperparameters("functionals", {}), _norm("compare", (64,)))
    xi, _ = _data((16, 24, 1))
    xc, _ = _data((64,))
    pi, pf = keras.ops.convert_to_numpy(image(xi)), keras.ops.convert_to_numpy(feats(xc))
    geometric = pi ** 0.3 * pf ** 0.7
    references = {"mean": 0.3 * pi + 0.7 * pf, "product": geometric / geometric.sum(axis=1, keepdims=True)}
    for how, expected in references.items():
        fused = fusion.assemble({"image": image, "compare": feats}, 0.3, how)
        got = keras.ops.convert_to_numpy(fused({"image": xi, "compare": xc}))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fusion.combine(0.3, pi, pf, how), expected, rtol=1e-5, atol=1e-6)  # numpy twin
        fused.save(tmp_path / f"fusion-{how}.keras")
        reloaded = zoo.load_model(tmp_path / f"fusion-{how}.keras")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded({"image": xi, "compare": xc})), got, rtol=1e-5)
    # a branch that gives a class probability 0 vetoes it in the product without a NaN
    veto = fusion.combine(0.5, np.array([[0.0, 0.5, 0.5]]), np.array([[0.9, 0.05, 0.05]]))
    assert np.isfinite(veto).all() and veto[0, 0] < 1e-6 and veto.sum() == pytest.approx(1.0)
    for bad, key in (({"image_model": "mlp"}, "image_model"), ({"weight": 1.5}, "weight"),
                     ({"combine": "max"}, "combine")):
        with pytest.raises(ParamsError, match=f"models.fusion.{key}"):
            zoo.hyperparameters("fusion", bad)


def test_prior_correction_divides_the_trained_probabilities_by_the_training_class_frequencies(tmp_path):
    keras = pytest.importorskip("keras")
    import yaml

    from pipeline.train import TrainConfig, build_card, class_prior, fit

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = dict(params, model="functionals", train=dict(params["train"], epochs=1, prior_correction=True))
    cfg = TrainConfig.from_params(params)
    labels = np.array(["angry"] * 30 + ["happy"] * 8 + ["sad"] * 10)  # anger common, as in most corpora
    x = np.random.default_rng(0).normal(size=(len(labels), 64)).astype(np.float32)
    classes = ["angry", "happy", "sad"]
    prior = class_prior(labels, classes)
    np.testing.assert_allclose(prior, [30 / 48, 8 / 48, 10 / 48])
    model, *_ = fit(cfg, {"compare": x}, labels, classes, verbose=0)
    plain = keras.Model(model.inputs, model.get_layer("prior_correction").input)  # the trained softmax itself
    p, got = (keras.ops.convert_to_numpy(m(x)) for m in (plain, model))
    expected = p / prior
    np.testing.assert_allclose(got, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    model.save(tmp_path / "balanced.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(zoo.load_model(tmp_path / "balanced.keras")(x)), got,
                               rtol=1e-6)
    # the card says what was divided out; class weights already even the classes out, so nothing is
    from types import SimpleNamespace

    card = build_card(cfg, ("compare",), classes, SimpleNamespace(inputs={"compare": x}, labels=labels,
                                                                  speakers=np.array(["s1", "s2"] * 24)),
                      {"audio": {}, "features": {}})
    assert card["prior_correction"]["training_prior"] == pytest.approx(dict(zip(classes, prior)), abs=1e-6)
    np.testing.assert_allclose(class_prior(labels, classes, class_weights=True), [1 / 3] * 3)
    off, *_ = fit(dataclasses_replace(cfg, prior_correction=False), {"compare": x}, labels, classes, verbose=0)
    assert "prior_correction" not in [layer.name for layer in off.layers]


def test_every_model_has_the_common_hyperparameters():
    for name in BUILT:  # a fusion's branches have their own
        defaults = zoo.get(name).DEFAULTS
        for key in ("learning_rate", "batch_size", "optimizer", "dropout", "l2"):
            assert key in defaults, (name, key)
        assert defaults["optimizer"] in zoo.OPTIMIZERS
        assert zoo.hyperparameters(name, dict(defaults)) == defaults  # defaults pass their own checks


def test_importing_the_registry_does_not_import_keras():
    code = ("import sys, pipeline.zoo as z\n"
            "for n in z.MODEL_NAMES: z.get(n); z.hyperparameters(n, {})\n"
            "z.main([])\n"
            "bad = [m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "cnn_blstm_attention" in result.stdout


def test_cnn_pooled_time_average_keeps_where_in_frequency_and_drops_where_in_time():
    """pooling: time_avg averages the last map over time only: a pattern moved in time (by a multiple of the
    input pooling's and four blocks' stride, away from the edges) gives the same probabilities, moved in
    frequency different ones (pitch and spectral balance are where the emotion is; when in the clip is not)."""
    pytest.importorskip("keras")
    hp = zoo.hyperparameters("cnn_pooled", {"pooling": "time_avg"})
    model = zoo.build("cnn_pooled", (32, 192, 1), N_CLASSES, hp)
    assert "GlobalAveragePooling2D" not in {type(layer).__name__ for layer in model.layers}

    def clip(band: int, frame: int):
        x = np.zeros((1, 32, 192, 1), dtype="float32")
        x[0, band:band + 4, frame:frame + 6, 0] = np.random.default_rng(0).normal(size=(4, 6))
        return np.asarray(model(x, training=False))

    stride = hp["time_pool"] * 16  # the input's time pooling, then four 2x2 max-pools
    here = clip(4, 64)
    np.testing.assert_allclose(clip(4, 64 + stride), here, rtol=1e-4, atol=1e-6)  # a stride later
    assert np.abs(clip(20, 80) - here).max() > 1e-4                     # 16 bands higher
