"""Benchmark: training input pipeline (shards -> decoded, augmented batches) against what the model eats.

    .venv/bin/python bench/bench_train_input.py --images 1024 --out bench/results/train_input.json

Renders N synthetic utterances with the real render path into a temp shard, then measures on this machine:
  decode:  shard PNGs -> uint8 array (pipeline.dataset.load_split, worker processes), images/s: done once
           when training starts (the decoded split stays in memory), so a start-up cost, not a per-epoch one;
  batches: the training PyDataset (float conversion + time shift + noise [+ SpecAugment]), images/s: what
           feeds every epoch;
  model:   the default model (params.yaml `model`) training on ready batches, images/s after warm-up.
input_over_model = batches / model must be at least 3: the accelerator never waits on the input.
`--shards DIR` times rendered shards (DIR/train/*.parquet) instead, e.g. on a GPU machine without the audio stack.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from pipeline.params import available_cpus  # noqa: E402


def make_shard(root: Path, n: int, params: dict) -> None:
    from bench_render import synth_utterance

    from pipeline.audio import AudioConfig, standardise
    from pipeline.features import FeatureConfig, render
    from pipeline.shards import ShardWriter

    acfg, fcfg = AudioConfig.from_params(params), FeatureConfig.from_params(params)
    rng = np.random.default_rng(0)
    labels = ["angry", "happy", "sad", "neutral", "fearful", "disgust", "surprise"]
    writer = ShardWriter(root, 2000, {"image_shape": [fcfg.image_height, fcfg.image_width, 3]})
    for i in range(n):
        y = standardise(synth_utterance(rng, 16000, 2.0)[:, None], 16000, acfg)
        r = render(y, 16000, fcfg)
        writer.add(("train", "bench"), {"name": f"b{i}.png", "image": r.png, "item_id": str(i), "utt_id": str(i),
                                        "corpus": "bench", "speaker": "bench:0", "gender": None, "text_id": None,
                                        "label": labels[i % 7], "split": "train", "augmented": False,
                                        "augmentation": "", "source_path": ""})
    writer.flush()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--model-steps", type=int, default=10)
    ap.add_argument("--shards", help="time these rendered shards (a folder holding train/) instead of synthesising")
    ap.add_argument("--out", default=str(ROOT / "bench/results/train_input.json"))
    args = ap.parse_args(argv)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["features"]["extra"] = []
    from pipeline.dataset import load_split, make_sequence, one_hot
    from pipeline.train import TrainConfig

    cfg = TrainConfig.from_params(params)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.shards) if args.shards else Path(tmp)
        if not args.shards:
            make_shard(root, args.images, params)
        t = time.perf_counter()
        data = load_split("train", "image", root=root, workers=available_cpus())
        decode = len(data) / (time.perf_counter() - t)
    classes = sorted(set(data.labels))
    y = one_hot(data.labels, classes)
    seq = make_sequence(data.x, y, cfg.batch_size, shuffle=True, seed=0, augment=cfg.augment)
    t = time.perf_counter()
    for i in range(len(seq)):
        seq[i]
    batches = len(data) / (time.perf_counter() - t)

    import keras

    from pipeline import zoo
    from pipeline.backend import has_gpu

    cfg.set_precision_policy(has_gpu())  # as train does
    model = zoo.build(cfg.model, data.x.shape[1:], len(classes), dict(cfg.hp))
    model.compile(optimizer=zoo.make_optimizer(cfg.hp), loss="categorical_crossentropy")
    ready = [seq[i % len(seq)] for i in range(min(args.model_steps, len(seq)))]  # input cost kept out
    for xb, yb in ready[:3]:
        model.train_on_batch(xb, yb)  # warm-up: graph tracing / compilation
    t = time.perf_counter()
    for i in range(args.model_steps):
        xb, yb = ready[i % len(ready)]
        model.train_on_batch(xb, yb)
    consumed = args.model_steps * cfg.batch_size / (time.perf_counter() - t)
    result = {"model": cfg.model, "backend": keras.backend.backend(), "image_shape": list(data.x.shape[1:]),
              "batch_size": cfg.batch_size, "decode_images_per_s": round(decode, 1),
              "batches_images_per_s": round(batches, 1), "model_images_per_s": round(consumed, 1),
              "decode_seconds": round(len(data) / decode, 2), "input_over_model": round(batches / consumed, 1),
              "cpus": os.cpu_count(), "images": len(data), "device": "GPU" if has_gpu() else "CPU"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
