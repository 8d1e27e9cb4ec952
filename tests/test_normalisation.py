"""Speaker normalisation (pipeline/normalisation.py): one object, the same arithmetic for features and spectrograms,
checked against plain numpy on small fixtures whose statistics are not the identity."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.normalisation import SpeakerNormaliser

RNG = np.random.default_rng(0)


def vectors():
    """Two speakers far apart (means 5 and -3, stds 2 and 0.5), and training rows of a third population."""
    x = np.concatenate([RNG.normal(5, 2, (12, 3)), RNG.normal(-3, 0.5, (12, 3))]).astype(np.float32)
    speakers = np.array(["a"] * 12 + ["b"] * 12, dtype=object)
    train = RNG.normal(1.5, 4.0, (40, 3)).astype(np.float32)
    return x, speakers, train


def test_each_speaker_is_z_scored_on_its_own_statistics():
    x, speakers, train = vectors()
    norm = SpeakerNormaliser(layout="vector", mode="speaker").fit(train)
    out = norm.normalise(x, speakers)
    for s in ("a", "b"):
        rows = x[speakers == s]
        expected = np.clip((rows - rows.mean(axis=0)) / (rows.std(axis=0) + 1e-6), -5, 5)
        np.testing.assert_allclose(out.x[speakers == s], expected, rtol=1e-5, atol=1e-5)
    assert set(out.used) == {"speaker (12 clips)"}


def test_no_speaker_and_too_few_clips_get_the_training_population_not_the_batch():
    x, speakers, train = vectors()
    norm = SpeakerNormaliser(layout="vector", mode="speaker").fit(train)
    expected = np.clip((x - train.mean(axis=0)) / (train.std(axis=0) + 1e-6), -5, 5)
    cold = norm.normalise(x)  # one file of a stranger: no statistics of the speaker
    np.testing.assert_allclose(cold.x, expected, rtol=1e-5, atol=1e-5)
    assert set(cold.used) == {"population"}
    few = np.array(["a"] * 12 + ["c"] * 12, dtype=object)
    few[12:21] = "d"  # speaker d: 9 clips, under min_clips 10
    out = norm.normalise(x, few)
    np.testing.assert_allclose(out.x[few == "d"], expected[few == "d"], rtol=1e-5, atol=1e-5)
    assert out.used[few == "d"][0] == "population" and out.used[0] == "speaker (12 clips)"
    # and not the identity: the population's statistics moved every value
    assert np.abs(out.x[few == "d"] - x[few == "d"]).min() > 0.05


def test_given_statistics_come_from_enrolment_rows_not_the_scored_ones():
    x, speakers, train = vectors()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", min_clips=5).fit(train)
    enrol = RNG.normal(4, 1, (6, 3)).astype(np.float32)
    out = norm.normalise(x[:12], speakers[:12], given={"a": norm.statistics(enrol, "enrolled")})
    expected = np.clip((x[:12] - enrol.mean(axis=0)) / (enrol.std(axis=0) + 1e-6), -5, 5)
    np.testing.assert_allclose(out.x, expected, rtol=1e-5, atol=1e-5)
    assert set(out.used) == {"enrolled (6 clips)"}


def spectrograms():
    """(rows, bands, frames, planes) in dB: speech in the middle frames, the -100 dB floor (padding) around it."""
    x = np.full((5, 4, 10, 2), -100.0, dtype=np.float32)
    x[..., 0][:, :, 2:8] = RNG.normal(-40, 8, (5, 4, 6))
    x[..., 1] = 0.0
    x[..., 1][:, :, 2:8] = RNG.normal(0, 3, (5, 4, 6))
    return x


def test_spectrogram_bands_are_z_scored_over_the_speakers_speech_frames():
    x = spectrograms()
    norm = SpeakerNormaliser(layout="spectrogram", mode="speaker", min_clips=2, floor=-100.0).fit(x)
    out = norm.normalise(x, np.array(["a"] * 5, dtype=object))
    speech = x[:, :, 2:8, :]  # numpy reference: per band and plane over the speech frames of every clip
    mean = speech.mean(axis=(0, 2), keepdims=True)
    std = speech.std(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(out.x[:, :, 2:8, :], np.clip((speech - mean) / (std + 1e-6), -5, 5),
                               rtol=1e-4, atol=1e-4)
    assert np.all(out.x[:, :, :2, :] == 0) and np.all(out.x[:, :, 8:, :] == 0)  # padding carries nothing


def test_utterance_mode_needs_no_speaker():
    x = spectrograms()
    norm = SpeakerNormaliser(layout="spectrogram", mode="utterance", floor=-100.0)
    out = norm.normalise(x)
    one = x[3:4, :, 2:8, :]
    ref = np.clip((one - one.mean(axis=(0, 2), keepdims=True)) / (one.std(axis=(0, 2), keepdims=True) + 1e-6), -5, 5)
    np.testing.assert_allclose(out.x[3:4, :, 2:8], ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(UserError, match="spectrogram"):
        SpeakerNormaliser(layout="vector", mode="utterance")


def test_accumulated_statistics_equal_those_of_all_rows_at_once():
    x = spectrograms()
    norm = SpeakerNormaliser(layout="spectrogram", floor=-100.0)
    acc = norm.accumulator()
    for part in (x[:2], x[2:3], x[3:]):
        acc.add(part)
    a, b = acc.statistics(), norm.statistics(x)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-5)
    assert a.clips == 5


def test_the_card_holds_the_whole_policy():
    x, speakers, train = vectors()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", min_clips=7, clip=3.0).fit(train)
    back = SpeakerNormaliser.from_card(norm.to_card())
    assert (back.mode, back.min_clips, back.clip, back.eps) == ("speaker", 7, 3.0, norm.eps)
    np.testing.assert_array_equal(back.normalise(x, speakers).x, norm.normalise(x, speakers).x)
    with pytest.raises(UserError, match="re-train"):
        SpeakerNormaliser.from_card({"mode": "speaker"})
