"""Benchmark: one training epoch of the fusion's spectrogram branch, the way crossval trains it.

    .venv/bin/python bench/bench_fit_epoch.py --out bench/results/fit_epoch.json

The spectrogram branch's training is nearly all of a fused cross-validation's time (80 of its 40-epoch trainings
per seed of leave-one-speaker-out on EmoDB, with the refit). This times `pipeline.train.fit` itself on arrays the
size of an EmoDB fold (372 training clips, 45 validation clips, 64 bands x 301 frames; the values do not matter
for the time), with params.yaml's branch settings (augmentation, mixup, batch size), in four ways, alternated so
that a slow spell of the machine falls on all of them:

  batch threads 1 or 2:  threads preparing the next augmented batches while the model trains
                         (pipeline.dataset.TRAINING_BATCH_THREADS; 1 = in turn with the training step);
  validation each epoch: the validation loss after every epoch (what the train stage logs for dvclive; crossval
                         scores its validation speakers once, after training).

`--time-pool A B` instead alternates the branch's input resolution (models.cnn_pooled.time_pool 1: every 10-ms
frame; 2: pairs of frames averaged; 4: four frames, 40-ms steps), two threads and no validation every way:
`--time-pool 1 2` and `--time-pool 2 4` are the two comparisons of docs/performance.md.

Seconds per epoch: the median over the epochs after the first (which traces the graph) of every repetition.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

WAYS = {"before: 1 thread, validation each epoch": (1, True, None), "1 thread, no validation": (1, False, None),
        "2 threads, validation each epoch": (2, True, None), "after: 2 threads, no validation": (2, False, None)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=372)
    ap.add_argument("--val-clips", type=int, default=45)
    ap.add_argument("--epochs", type=int, default=4, help="per repetition (the first is not counted)")
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--time-pool", type=int, nargs="+", metavar="N",
                    help="these time_pool values against each other (the first is 'before') instead of the threads")
    ap.add_argument("--out", default=str(ROOT / "bench/results/fit_epoch.json"))
    args = ap.parse_args(argv)

    import keras

    from pipeline import dataset
    from pipeline.io import write_json
    from pipeline.train import TrainConfig, fit

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = TrainConfig.from_params(dict(params, model="fusion")).branches["image"]
    shape = (params["features"]["n_mels"], 301, 1)
    rng = np.random.default_rng(0)
    classes = ["angry", "disgust", "fearful", "happy", "neutral", "sad"]  # EmoDB's six
    x = {"image": rng.standard_normal((args.clips, *shape)).astype(np.float32)}
    xv = {"image": rng.standard_normal((args.val_clips, *shape)).astype(np.float32)}
    y = np.asarray(classes)[rng.integers(0, len(classes), args.clips)]
    yv = np.asarray(classes)[rng.integers(0, len(classes), args.val_clips)]

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    ways = {f"time_pool {n}": (2, False, n) for n in args.time_pool} if args.time_pool else WAYS
    times = {way: [] for way in ways}
    for rep in range(args.reps):
        for way, (threads, validate, time_pool) in ways.items():
            dataset.TRAINING_BATCH_THREADS = threads
            clock = EpochTimes()
            clock.seconds = []
            # verbose 2 is what makes fit watch validation each epoch outside the train stage (its progress line)
            hp = cfg.hp if time_pool is None else dict(cfg.hp, time_pool=time_pool)
            fit(dataclasses.replace(cfg, epochs=args.epochs, hp=hp), x, y, classes, xv, yv,
                verbose=2 if validate else 0, extra_callbacks=(clock,))
            times[way] += clock.seconds[1:]
            keras.backend.clear_session()
            print(f"rep {rep}: {way}: {np.median(clock.seconds[1:]):.2f} s/epoch", file=sys.stderr)
    before = float(np.median(times[next(iter(ways))]))
    result = {"model": cfg.model, "backend": keras.backend.backend(), "cpus": os.cpu_count(), "clips": args.clips,
              "val_clips": args.val_clips, "shape": list(shape), "batch_size": cfg.batch_size,
              "seconds_per_epoch": {way: round(float(np.median(t)), 3) for way, t in times.items()},
              "spread": {way: [round(float(min(t)), 3), round(float(max(t)), 3)] for way, t in times.items()},
              "time_pool": cfg.hp.get("time_pool"),
              "after_over_before": round(float(np.median(times[list(ways)[-1]])) / before, 3)}
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
