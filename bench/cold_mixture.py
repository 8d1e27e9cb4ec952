"""A stranger's file scored as a mixture over the training speakers (measured, not adopted: docs/recipe.md).

The cold path centres a file on one guess of its speaker's mean (today: the clip's gender's training speakers for
the functionals, the population's mean moved towards the clip's own bands for the spectrogram). Here the fold
models a cross-validation kept score each file once per training speaker, centred on that speaker's statistics,
and the probabilities are averaged with weights: every speaker alike (`all`), the speakers of the clip's likelier
gender (`gender`), each speaker by the gender classifier's probability of its gender (`softgender`), or by how
close the clip's functionals sit to the speaker's mean (`near`, a softmax of the distance, features weighted by
1 / (1 + k), k shrinkage's per feature). `centres` says which inputs take the speaker's centre: `both`, `compare`
(the spectrogram keeps today's rule) or `clip` (the spectrogram's centre is the speaker's moved towards the
clip's own by 1 / (1 + k)). Also prints a bound no rule can pass: for each test speaker, the one training
speaker whose centre scores it best (chosen with its labels: an oracle, not a method).

    python bench/cold_mixture.py bench/results/crossval/fusion-g42/models \
        "split.folds=10|crossval.seeds=[42]|train.normalisation_cold=gender"

The models must be a fusion's (image + compare), kept with `--keep-models` (bench/crossval_grid.py); the
overrides those of the run that kept them. Validation speakers are scored by each fold's model of step 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

WEIGHTS = ("all", "gender", "softgender", "near")
CENTRES = ("both", "compare", "clip")


def speaker_probabilities(model, card: dict, part, train) -> dict:
    """{centres: (clips, training speakers, classes)} probabilities and what the weights need."""
    from pipeline.crossval import scorer
    from pipeline.model_card import model_inputs, normalisers, speaker_statistics, values
    from pipeline.normalisation import Statistics

    norms = normalisers(card)
    predict = scorer(model)
    n = len(part)
    x_today, _ = model_inputs(part.inputs, card, speakers=None, norms=norms)
    image_norm = norms["image"]
    image = values("image", part.inputs["image"], card["inputs"]["image"].get("scale"))
    clip_values, clip_ok = image_norm.clip_values(image)
    towards_clip = 1.0 / (1.0 + image_norm.prior_clips.reshape(-1).astype(np.float64))
    spk = np.asarray(train.speakers, dtype=object)
    speakers = sorted(set(spk.tolist()))
    genders = train.meta["gender"].to_numpy()
    probs = {c: [] for c in CENTRES}
    means = []
    for s in speakers:
        st = speaker_statistics({k: v[spk == s] for k, v in train.inputs.items()}, card, source="speaker",
                                norms=norms)
        x_s, _ = model_inputs(part.inputs, card, speakers=np.array(["x"] * n, dtype=object), statistics={"x": st},
                              norms=norms)
        probs["both"].append(predict(x_s))
        probs["compare"].append(predict(dict(x_today, compare=x_s["compare"])))
        prior = image_norm.choose(st["image"]).mean.reshape(-1).astype(np.float64)
        centre = np.where(clip_ok[:, None], prior + towards_clip * (clip_values - prior), prior)
        pop = image_norm.population
        shrunk = Statistics(centre.astype(np.float32).reshape((n,) + pop.mean.shape), pop.std, 1, "clip", True)
        probs["clip"].append(predict(dict(x_s, image=image_norm.transform(image, shrunk))))
        means.append(st["compare"].mean.reshape(-1))
    compare = norms["compare"]
    names, gender_p = compare.gender_probabilities(np.asarray(part.inputs["compare"]))
    return {"probs": {c: np.stack(p, axis=1) for c, p in probs.items()}, "today": predict(x_today),
            "speaker_gender": [genders[spk == s][0] for s in speakers], "gender_names": names,
            "gender_p": gender_p, "means": np.stack(means), "x": np.asarray(part.inputs["compare"], np.float64),
            "pop": compare.population, "k": compare.prior_clips}


def weights(r: dict, how: str, tau: float = 0.5) -> np.ndarray:
    """(clips, training speakers) weights summing to 1 per clip."""
    n, s = r["gender_p"].shape[0], len(r["speaker_gender"])
    if how == "all":
        w = np.ones((n, s))
    elif how in ("gender", "softgender"):
        column = {g: i for i, g in enumerate(r["gender_names"])}
        p = np.stack([r["gender_p"][:, column[g]] for g in r["speaker_gender"]], axis=1)
        w = (p == p.max(axis=1, keepdims=True)).astype(float) if how == "gender" else p
    else:
        std = r["pop"].std.reshape(-1).astype(np.float64) + 1e-8
        mean = r["pop"].mean.reshape(-1).astype(np.float64)
        z, mu = np.clip((r["x"] - mean) / std, -5, 5), (r["means"] - mean) / std
        per_feature = 1.0 / (1.0 + r["k"].reshape(-1))
        d = (((z[:, None, :] - mu[None]) ** 2) * (per_feature / per_feature.sum())).sum(axis=2)
        w = np.exp(-(d - d.min(axis=1, keepdims=True)) / tau)
    return w / w.sum(axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path)
    ap.add_argument("overrides")
    args = ap.parse_args()
    from sklearn.metrics import recall_score

    from kept_models import fold_parts, load
    from pipeline.backend import quiet_tensorflow

    quiet_tensorflow()
    params, data = load(args.overrides)
    cold_rule = params["train"]["normalisation_cold"]
    scored = {"val": [], "test": []}
    for _, _, part_name, part, model, card, train in fold_parts(args.models, params, data, training=True):
        for kind, spec in card["inputs"].items():  # today's cold rule for the reference column
            spec["normalisation"]["cold"] = cold_rule.get(kind) if isinstance(cold_rule, dict) else cold_rule
        r = speaker_probabilities(model, card, part, train)
        r.update(classes=np.asarray(card["labels"]), actual=np.asarray(part.labels),
                 speaker=np.asarray(part.speakers, dtype=object))
        scored[part_name].append(r)

    def uar(rows, pick) -> float:
        actual = np.concatenate([r["actual"] for r in rows])
        return recall_score(actual, np.concatenate([r["classes"][pick(r).argmax(axis=1)] for r in rows]),
                            average="macro")

    print("| centres | weights | val | test |\n|---|---|---|---|")
    print(f"| today's rule | | {uar(scored['val'], lambda r: r['today']):.3f} | "
          f"{uar(scored['test'], lambda r: r['today']):.3f} |")
    for c in CENTRES:
        for how in WEIGHTS:
            mix = lambda r, c=c, how=how: (r["probs"][c] * weights(r, how)[:, :, None]).sum(axis=1)  # noqa: E731
            print(f"| {c} | {how} | {uar(scored['val'], mix):.3f} | {uar(scored['test'], mix):.3f} |")
    for c in ("both", "clip"):  # the oracle: per test speaker, the training speaker's centre that scores it best
        actual, predicted = [], []
        for r in scored["test"]:
            for spk in sorted(set(r["speaker"].tolist())):
                m = r["speaker"] == spk
                hits = [(r["classes"][r["probs"][c][m, s].argmax(axis=1)] == r["actual"][m]).mean()
                        for s in range(r["probs"][c].shape[1])]
                actual.append(r["actual"][m])
                predicted.append(r["classes"][r["probs"][c][m, int(np.argmax(hits))].argmax(axis=1)])
        print(f"| {c} | oracle: the best training speaker per test speaker | | "
              f"{recall_score(np.concatenate(actual), np.concatenate(predicted), average='macro'):.3f} |")


if __name__ == "__main__":
    main()
