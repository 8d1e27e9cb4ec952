"""The sketch that chose the spectrogram recipe's settings on validation speakers, outside the pipeline (fast to
iterate: log-mel arrays cached once, one Keras model per fold). EmoDB, leave-one-speaker-out; each fold's
validation speaker is the next speaker, and settings are compared on validation UAR only (the test speaker's
UAR is printed for the record, never used to choose). The pipeline's cnn_pooled + recipe is what it chose;
the figures that count come from the crossval stage (bench/crossval_grid.py).

    python bench/spectrogram_sketch.py prepare EMODB_WAV_DIR        # cache: bench/results/sketch/
    python bench/spectrogram_sketch.py run NAME key=value ...       # e.g. run gap pool=gap; results.jsonl

Settings compared (docs/recipe.md has the table): pool attn | gap, deltas 0 | 1, norm speaker | utterance.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CACHE = Path("bench/results/sketch")


def prepare(wav_dir: str):
    """EmoDB's files (boredom dropped): trimmed, resampled, normalised speech -> log-mel dB arrays, cached."""
    from pipeline import audio, features
    from pipeline.corpora.emodb import LABEL_MAP

    CACHE.mkdir(parents=True, exist_ok=True)
    files = sorted(Path(wav_dir).glob("*.wav"))
    rows = []
    for f in files:
        lab = LABEL_MAP[f.stem[5].lower()]
        if lab is None:
            continue
        rows.append((f, lab, f.stem[:2]))
    acfg = audio.AudioConfig()
    ys = []
    for f, lab, spk in rows:
        s, sr = audio.read(f)
        ys.append(audio.prepare(s, sr, acfg))
    labels = np.array([r[1] for r in rows])
    speakers = np.array([r[2] for r in rows])
    names = np.array([r[0].stem for r in rows])
    lens = np.array([len(y) for y in ys])
    print("clips", len(ys), "len s min/med/max", lens.min() / 16000, np.median(lens) / 16000, lens.max() / 16000)
    np.savez(CACHE / "meta.npz", labels=labels, speakers=speakers, names=names, lens=lens)
    for name, n_fft, hop, n_mels in (("m64_h256", 1024, 256, 64), ("m64_h160", 512, 160, 64),
                                      ("m128_h256", 1024, 256, 128), ("m40_h160", 512, 160, 40)):
        cfg = features.FeatureConfig(n_fft=n_fft, hop_length=hop, n_mels=n_mels)
        specs = []
        for y in ys:
            a = features._analyse(y, 16000, cfg)
            db = features.power_to_db(a.mel, ref=1.0, top_db=None)  # (T, n_mels) absolute dB
            specs.append(db.astype(np.float32))
        T = max(s.shape[0] for s in specs)
        print(name, "frames max", T, "dB range", min(s.min() for s in specs), max(s.max() for s in specs))
        np.savez(CACHE / f"{name}.npz", *specs)


C = dict(spec="m64_h160", width=301, filters=(16, 32, 64, 128), pool="attn", epochs=40, batch=32, lr=1e-3,
         wd=1e-3, mixup=0.2, fmask=8, tmask=20, nmask=2, shift=1, dropout=0.3, norm="speaker", pad="mean",
         folds="all", seed=1, deltas=0, label_smooth=0.0, head=0, stats="speech", crop=0)


def parse(argv):
    cfg = dict(C)
    for a in argv:
        k, v = a.split("=", 1)
        cfg[k] = eval(v) if k not in ("spec", "pool", "norm", "pad", "folds", "stats") else v
    return cfg


def load(cfg):
    meta = np.load(CACHE / "meta.npz")
    z = np.load(CACHE / f"{cfg['spec']}.npz")
    specs = [z[f"arr_{i}"] for i in range(len(z.files))]
    return specs, meta["labels"], meta["speakers"]


def delta(x, order):
    from pipeline.features import _delta
    return _delta(x.T, order).T


def build_inputs(specs, speakers, cfg, stats_rows):
    """(N, M, W, C) float32: per band z-scored (speaker stats or population stats from stats_rows)."""
    W = cfg["width"]
    M = specs[0].shape[1]
    planes = []
    for s in specs:
        p = [s]
        if cfg["deltas"]:
            p += [delta(s, 1), delta(s, 2)]
        planes.append(np.stack(p, axis=-1))  # (T, M, C)
    Cn = planes[0].shape[-1]
    X = np.zeros((len(specs), M, W, Cn), np.float32)
    mask = np.zeros((len(specs), W), bool)
    # statistics
    def stats_of(idx):
        cat = np.concatenate([planes[i] for i in idx], axis=0)  # (frames, M, C)
        return cat.mean(axis=0), cat.std(axis=0) + 1e-3
    if cfg["norm"] == "speaker":
        st = {spk: stats_of(np.flatnonzero(speakers == spk)) for spk in np.unique(speakers)}
        get = lambda i: st[speakers[i]]
    elif cfg["norm"] == "population":
        pop = stats_of(stats_rows)
        get = lambda i: pop
    elif cfg["norm"] == "utterance":
        get = lambda i: stats_of([i])
    for i, p in enumerate(planes):
        mu, sd = get(i)
        zp = (p - mu) / sd  # (T, M, C)
        T = zp.shape[0]
        if T >= W:
            a = (T - W) // 2
            X[i] = zp[a:a + W].transpose(1, 0, 2)
            mask[i] = True
        else:
            left = (W - T) // 2
            X[i, :, left:left + T] = zp.transpose(1, 0, 2)
            mask[i, left:left + T] = True
    return X, mask


def uar(y, p, n):
    r = [np.mean(p[y == c] == c) for c in range(n) if (y == c).any()]
    return float(np.mean(r))


def make_model(shape, n, cfg):
    import keras
    from keras import layers, ops
    inp = keras.Input(shape)
    x = inp
    reg = None
    for f in cfg["filters"]:
        x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2, padding="same")(x)
    if cfg["pool"] == "gap":
        x = layers.GlobalAveragePooling2D()(x)
    else:
        x = layers.Lambda(lambda t: ops.mean(t, axis=1))(x)  # (B, W', F): mean over frequency
        if cfg["pool"] == "attn":
            s = layers.Dense(64, activation="tanh")(x)
            s = layers.Dense(1)(s)
            a = layers.Softmax(axis=1)(s)
            x = layers.Lambda(lambda t: ops.sum(t[0] * t[1], axis=1))([x, a])
        elif cfg["pool"] == "stat":
            x = layers.Lambda(lambda t: ops.concatenate([ops.mean(t, 1), ops.std(t, 1)], -1))(x)
    x = layers.Dropout(cfg["dropout"])(x)
    if cfg["head"]:
        x = layers.Dense(cfg["head"], activation="relu")(x)
        x = layers.Dropout(cfg["dropout"])(x)
    out = layers.Dense(n, activation="softmax")(x)
    return keras.Model(inp, out)


def train_eval(Xtr, ytr, evals, n, cfg, seed):
    import keras
    keras.utils.set_random_seed(seed)
    model = make_model(Xtr.shape[1:], n, cfg)
    steps = int(np.ceil(len(Xtr) / cfg["batch"])) * cfg["epochs"]
    sched = keras.optimizers.schedules.CosineDecay(cfg["lr"], steps)
    opt = keras.optimizers.AdamW(sched, weight_decay=cfg["wd"]) if cfg["wd"] else keras.optimizers.Adam(sched)
    model.compile(opt, keras.losses.CategoricalCrossentropy(label_smoothing=cfg["label_smooth"]))
    rng = np.random.default_rng(seed)
    Y = np.eye(n, dtype=np.float32)[ytr]

    class S(keras.utils.PyDataset):
        def __init__(s):
            super().__init__()
            s.order = rng.permutation(len(Xtr))

        def __len__(s):
            return int(np.ceil(len(Xtr) / cfg["batch"]))

        def __getitem__(s, i):
            idx = s.order[i * cfg["batch"]:(i + 1) * cfg["batch"]]
            x = Xtr[idx].copy()
            y = Y[idx].copy()
            B, M, W, _ = x.shape
            if cfg["shift"]:
                for b in range(B):
                    x[b] = np.roll(x[b], rng.integers(-W // 8, W // 8 + 1), axis=1)
            for b in range(B):
                for _ in range(cfg["nmask"]):
                    if cfg["fmask"]:
                        f = rng.integers(0, cfg["fmask"] + 1); f0 = rng.integers(0, M - f + 1); x[b, f0:f0 + f] = 0
                    if cfg["tmask"]:
                        t = rng.integers(0, cfg["tmask"] + 1); t0 = rng.integers(0, W - t + 1); x[b, :, t0:t0 + t] = 0
            if cfg["mixup"]:
                lam = rng.beta(cfg["mixup"], cfg["mixup"], size=B).astype(np.float32)
                lam = np.maximum(lam, 1 - lam)
                perm = rng.permutation(B)
                x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
                y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
            return x, y

        def on_epoch_end(s):
            s.order = rng.permutation(len(Xtr))

    model.fit(S(), epochs=cfg["epochs"], verbose=0)
    return [model.predict(X, verbose=0, batch_size=64) for X in evals]


def run(argv):
    name, cfg = argv[0], parse(argv[1:])
    specs, labels, speakers = load(cfg)
    classes = sorted(set(labels))
    y = np.array([classes.index(l) for l in labels])
    spk_list = sorted(set(speakers))
    folds = range(len(spk_list)) if cfg["folds"] == "all" else [int(f) for f in cfg["folds"].split(",")]
    res = {"name": name, "cfg": cfg, "folds": []}
    t0 = time.time()
    allp_val, allp_test = [], []
    for k in folds:
        test_spk, val_spk = spk_list[k], spk_list[(k + 1) % len(spk_list)]
        te, va = speakers == test_spk, speakers == val_spk
        tr = ~(te | va)
        X, _ = build_inputs(specs, speakers, cfg, np.flatnonzero(tr))
        t = time.time()
        pv, pt = train_eval(X[tr], y[tr], [X[va], X[te]], len(classes), cfg, cfg["seed"] * 100 + k)
        u_v, u_t = uar(y[va], pv.argmax(1), len(classes)), uar(y[te], pt.argmax(1), len(classes))
        res["folds"].append({"k": k, "val": u_v, "test": u_t, "s": round(time.time() - t, 1)})
        allp_val.append((y[va], pv)); allp_test.append((y[te], pt))
        print(f"{name} fold {k} val {u_v:.3f} test {u_t:.3f} {time.time() - t:.0f}s", flush=True)
    yv = np.concatenate([a for a, _ in allp_val]); pv = np.concatenate([b for _, b in allp_val]).argmax(1)
    yt = np.concatenate([a for a, _ in allp_test]); pt = np.concatenate([b for _, b in allp_test]).argmax(1)
    res.update(val_mean=float(np.mean([f["val"] for f in res["folds"]])), val_pooled=uar(yv, pv, len(classes)),
               test_mean=float(np.mean([f["test"] for f in res["folds"]])), test_pooled=uar(yt, pt, len(classes)),
               seconds=round(time.time() - t0))
    print(f"== {name}: val mean {res['val_mean']:.3f} pooled {res['val_pooled']:.3f} | test mean {res['test_mean']:.3f} "
          f"pooled {res['test_pooled']:.3f} | {res['seconds']} s", flush=True)
    with open(CACHE / "results.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        prepare(sys.argv[2])
    else:
        run(sys.argv[2:])
