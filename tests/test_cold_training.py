"""Cold as a trained condition: the training rows served as a stranger's file is (train.cold_share), the
population's statistics or the clip's own shrunk estimate (train.normalisation_cold), and the card carrying the
policy so that predict and crossval's cold figure serve what training saw."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from pipeline import model_card

PARAMS = yaml.safe_load(open("params.yaml"))
AUDIO = {"sample_rate": 16000}
FEATURES = {"n_mels": 4}


def _sequence_rows(seq, epochs: int) -> list[np.ndarray]:
    """Each epoch's rows in the order served (values only: the fixture's rows are unique)."""
    out = []
    for _ in range(epochs):
        out.append(np.concatenate([seq[i][0] for i in range(len(seq))]))
        seq.on_epoch_end()
    return out


def test_the_sequence_serves_a_seeded_share_of_rows_from_the_alternative_each_epoch():
    pytest.importorskip("keras")
    from pipeline.dataset import make_sequence

    x = np.arange(200, dtype=np.float32)[:, None]  # row i holds i; its alternative holds -i - 1
    alt = -x - 1
    every = {}
    for share in (0.0, 0.5, 1.0):
        seq = make_sequence(x, None, 16, shuffle=True, seed=3, alternative=alt, alternative_share=share)
        every[share] = _sequence_rows(seq, 3)
    for epoch in every[0.0]:
        assert (epoch >= 0).all()  # share 0: the rows as they are
    for epoch in every[1.0]:
        assert (epoch < 0).all()  # share 1: every row from the alternative
    swapped = [epoch[:, 0] < 0 for epoch in every[0.5]]
    for epoch, mask in zip(every[0.5], swapped):
        rows = np.where(epoch[:, 0] < 0, -epoch[:, 0] - 1, epoch[:, 0])
        assert sorted(rows.tolist()) == list(range(200))  # each row once an epoch, from one side or the other
        assert 0.35 < mask.mean() < 0.65
    assert not np.array_equal(swapped[0], swapped[1])  # a new draw each epoch
    again = _sequence_rows(make_sequence(x, None, 16, shuffle=True, seed=3, alternative=alt, alternative_share=0.5), 3)
    for a, b in zip(again, every[0.5]):
        np.testing.assert_array_equal(a, b)  # (seed, epoch) alone decide: a resumed run serves the same rows


def test_shuffled_offsets_move_a_seeded_share_of_rows_by_a_random_rows_offset_and_keep_silence_silent():
    pytest.importorskip("keras")
    from pipeline.dataset import cold_offsets, make_sequence

    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, (40, 3, 6, 1)).astype(np.float32)  # 40 spectrograms: 3 bands x 6 frames
    x[:, :, 4:] = 0.0  # the last two frames are padding (normalised silence is 0)
    band_shift = rng.normal(0, 1, (40, 3, 1, 1)).astype(np.float32)
    x_cold = np.where(x != 0, x + band_shift, 0.0).astype(np.float32)  # a stranger's centre: a shift per band
    offsets = cold_offsets(x, x_cold)
    assert offsets.shape == (40, 3, 1, 1)
    np.testing.assert_allclose(offsets, band_shift, atol=1e-6)  # padding frames do not dilute the offset
    served = _sequence_rows(make_sequence(x, None, 8, shuffle=False, seed=1, offsets=offsets,
                                          alternative_share=0.5), 2)
    for epoch in served:
        assert (epoch[:, :, 4:] == 0).all()  # padding stays silent
        moved = (np.abs(epoch - x) > 1e-6).any(axis=(1, 2, 3))
        assert 0.25 < moved.mean() < 0.75
        delta = (epoch - x)[moved][:, :, :1]  # the move of a row's first frame is some row's offset
        assert all(np.isclose(d, offsets[:, :, :1], atol=1e-5).all(axis=(1, 2, 3)).any() for d in delta)
        np.testing.assert_array_equal(epoch[~moved], x[~moved])
    again = _sequence_rows(make_sequence(x, None, 8, shuffle=False, seed=1, offsets=offsets,
                                         alternative_share=0.5), 2)
    for a, b in zip(again, served):
        np.testing.assert_array_equal(a, b)  # (seed, epoch, batch) alone decide
    vector = rng.normal(0, 1, (10, 4)).astype(np.float32)
    np.testing.assert_allclose(cold_offsets(vector, vector + 2), np.full((10, 4), 2, np.float32), atol=1e-6)


def _card(cold: str, share: float, x, speakers):
    from pipeline.train import build_card

    cfg = SimpleNamespace(model="functionals", normalisation="speaker", normalisation_scale="population",
                          normalisation_shrinkage=True, prior_correction=False, normalisation_population="speakers",
                          normalisation_cold=cold, cold_share=share)
    return cfg, build_card(cfg, ("compare",), ["angry", "sad"], SimpleNamespace(inputs={"compare": x}, speakers=speakers),
                           {"audio": AUDIO, "features": FEATURES})


def _speakers(rng):
    offsets = rng.normal(0, 3, (6, 3))
    x = np.concatenate([rng.normal(o, 1, (12, 3)) for o in offsets]).astype(np.float32)
    return x, np.repeat([f"c:{i}" for i in range(6)], 12).astype(object)


def test_training_inputs_add_the_rows_as_a_stranger_is_served_and_the_card_says_so():
    from pipeline.train import training_inputs

    rng = np.random.default_rng(8)
    x, spk = _speakers(rng)
    for cold in ("population", "clip"):
        cfg, card = _card(cold, 0.5, x, spk)
        assert card["cold_training"] == {"share": 0.5, "offsets": "own"}
        norm = card["inputs"]["compare"]["normalisation"]
        assert norm["cold"] == cold and norm["population_weighting"] == "speakers"
        own, as_stranger = training_inputs(cfg, {"compare": x}, card, spk)
        np.testing.assert_array_equal(own["compare"], model_card.model_inputs({"compare": x}, card, speakers=spk)[0]["compare"])
        served, used = model_card.model_inputs({"compare": x}, card, speakers=None)  # predict's cold path
        np.testing.assert_array_equal(as_stranger["compare"], served["compare"])
        assert set(used) == {"clip (shrunk)" if cold == "clip" else "population"}
        cold_mode = model_card.inputs_by_mode({"compare": x}, spk, card, seed=0)["cold"][1]["compare"]
        np.testing.assert_array_equal(cold_mode, served["compare"])  # crossval's cold figure: the same rows
    cfg, card = _card("population", 0.0, x, spk)
    assert training_inputs(cfg, {"compare": x}, card, spk)[1] is None  # share 0: nothing extra is made


def test_cold_settings_are_checked_before_any_work():
    from pipeline.errors import ParamsError
    from pipeline.train import TrainConfig

    for key, bad in (("cold_share", 1.5), ("normalisation_cold", "speaker"), ("normalisation_population", "files"),
                     ("normalisation_cold", {"image": "gender", "spectrum": "clip"}),
                     ("normalisation_cold", {"compare": "nearest"})):
        with pytest.raises(ParamsError, match=f"train.{key}"):
            TrainConfig.from_params(dict(PARAMS, train=dict(PARAMS["train"], **{key: bad})))
    per_input = TrainConfig.from_params(dict(PARAMS, train=dict(PARAMS["train"], normalisation_cold={"image": "clip"})))
    from pipeline.train import cold_of

    assert cold_of(per_input.normalisation_cold, "image") == "clip"
    assert cold_of(per_input.normalisation_cold, "compare") == "population"  # a kind left out: the population's


def test_enrolment_on_neutral_clips_takes_only_the_speakers_neutral_clips_and_scores_the_rest():
    rng = np.random.default_rng(9)
    x, spk = _speakers(rng)
    labels = np.tile(["neutral"] * 4 + ["angry"] * 8, 6)  # 4 neutral clips a speaker, like a RAVDESS actor
    labels[:12] = "angry"  # the first speaker has none: it is met cold
    _, card = _card("population", 0.0, x, spk)
    drawn = model_card.neutral_draw(spk, labels, 10, seed=0)
    assert (labels[drawn] == "neutral").all() and drawn.sum() == 20  # all 4 of each of the five speakers with some
    assert model_card.neutral_draw(spk, labels, 3, seed=0).sum() == 15  # at most n a speaker
    modes = model_card.inputs_by_mode({"compare": x}, spk, card, seed=0, labels=labels)
    assert "enrolled_neutral" in modes and "enrolled_neutral" not in model_card.inputs_by_mode({"compare": x}, spk,
                                                                                              card, seed=0)
    scored, inputs = modes["enrolled_neutral"]
    np.testing.assert_array_equal(scored, ~drawn)  # the enrolment clips are not scored
    # each speaker's rows normalised on its neutral clips' statistics alone (shrunk: 4 clips < min_clips)
    norm = model_card.normalisers(card)["compare"]
    for s in sorted(set(spk))[1:]:
        stats = norm.choose(norm.statistics(x[drawn & (spk == s)], "enrolled"))
        rows = (spk == s)[~drawn]
        np.testing.assert_allclose(inputs["compare"][rows], norm.transform(x[(spk == s) & ~drawn], stats), rtol=1e-6)
    cold = model_card.model_inputs({"compare": x[spk == "c:0"]}, card)[0]["compare"]
    np.testing.assert_array_equal(inputs["compare"][(spk == "c:0")[~drawn]], cold)  # no neutral clip: cold


def test_the_card_learns_each_genders_population_from_the_training_speakers_and_predict_serves_it():
    import pandas as pd

    from pipeline.train import build_card

    rng = np.random.default_rng(10)
    x, spk = _speakers(rng)
    gender = np.where(np.isin(spk, ["c:0", "c:2", "c:4"]), "female", "male").astype(object)
    x[gender == "female", 0] += 20.0  # a voice's pitch: female speakers sit apart
    cfg = SimpleNamespace(model="functionals", normalisation="speaker", normalisation_scale="population",
                          normalisation_shrinkage=True, prior_correction=False, normalisation_population="clips",
                          normalisation_cold="gender", cold_share=0.0)
    train = SimpleNamespace(inputs={"compare": x}, speakers=spk, meta=pd.DataFrame({"gender": gender}))
    card = build_card(cfg, ("compare",), ["angry", "sad"], train, {"audio": AUDIO, "features": FEATURES})
    norm = card["inputs"]["compare"]["normalisation"]
    assert norm["cold"] == "gender" and set(norm["groups"]) == {"female", "male"}
    assert norm["group_model"]["classes"] == ["female", "male"]
    served, used = model_card.model_inputs({"compare": x[gender == "female"]}, card)  # strangers: no speaker
    assert all(u.startswith("population of female speakers") for u in used)
    assert abs(served["compare"][:, 0].mean()) < 0.2  # centred on the female speakers' mean, not the population's
