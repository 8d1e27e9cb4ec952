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


def speakers_with_known_variances(k_true=(1.0, 16.0, 0.0625), speakers=300, clips=20):
    """Rows of many speakers whose per-feature spread between speakers' means (tau) and within a speaker (sigma)
    are set so that k = sigma^2 / tau^2 is known."""
    rng = np.random.default_rng(1)
    sigma = np.sqrt(np.asarray(k_true))  # tau = 1 for every feature
    means = rng.normal(0, 1, (speakers, len(k_true)))
    x = np.concatenate([means[s] + rng.normal(0, 1, (clips, len(k_true))) * sigma for s in range(speakers)])
    return x.astype(np.float32), np.repeat([f"s{i}" for i in range(speakers)], clips).astype(object)


def test_shrinkage_estimates_k_from_the_training_speakers():
    x, spk = speakers_with_known_variances()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", shrinkage=True).fit(x, spk)
    # the method-of-moments estimate over 300 speakers: near the truth, in the right order
    np.testing.assert_allclose(norm.prior_clips, [1.0, 16.0, 0.0625], rtol=0.3)
    assert norm.prior_clips[1] > 10 * norm.prior_clips[0] > 10 * norm.prior_clips[2]
    with pytest.raises(ValueError, match="speakers"):
        SpeakerNormaliser(layout="vector", mode="speaker", shrinkage=True).fit(x)


def test_shrunk_mean_moves_from_the_population_towards_the_speaker_by_n_over_n_plus_k():
    x, spk = speakers_with_known_variances()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", shrinkage=True, scale="population").fit(x, spk)
    k, pop = norm.prior_clips, norm.population
    enrol = np.random.default_rng(2).normal(3, 1, (5, 3)).astype(np.float32)  # 5 clips: under min_clips
    scored = np.random.default_rng(3).normal(3, 1, (4, 3)).astype(np.float32)
    out = norm.normalise(scored, np.array(["new"] * 4, dtype=object), given={"new": norm.statistics(enrol, "enrolled")})
    mean = pop.mean + 5 / (5 + k) * (enrol.mean(axis=0) - pop.mean)  # numpy reference
    np.testing.assert_allclose(out.x, np.clip((scored - mean) / (pop.std + 1e-6), -5, 5), rtol=1e-4, atol=1e-4)
    assert set(out.used) == {"enrolled (5 clips, shrunk)"}
    # without shrinkage the same 5 clips are ignored (under min_clips): the population's statistics
    plain = SpeakerNormaliser(layout="vector", mode="speaker", scale="population").fit(x)
    ignored = plain.normalise(scored, np.array(["new"] * 4, dtype=object), given={"new": plain.statistics(enrol)})
    np.testing.assert_allclose(ignored.x, plain.normalise(scored).x)
    assert not np.allclose(out.x, ignored.x, atol=0.05)


def test_shrinkage_of_a_spectrogram_is_per_band_over_speech_frames_and_survives_the_card():
    x = np.concatenate([spectrograms() for _ in range(4)])
    for i, offset in enumerate((0.0, 6.0, -4.0, 9.0)):  # each speaker's level; the padding stays on the floor
        x[5 * i:5 * i + 5, :, 2:8, :] += offset
    spk = np.repeat(["a", "b", "c", "d"], 5).astype(object)
    norm = SpeakerNormaliser(layout="spectrogram", mode="speaker", shrinkage=True, floor=-100.0).fit(x, spk)
    assert norm.prior_clips.shape == norm.population.mean.shape == (4, 1, 2)
    # numpy reference: per clip, the mean of each band and plane over its speech frames (2..7)
    clip_means = x[:, :, 2:8, :].mean(axis=2)  # (clips, bands, planes)
    groups = clip_means.reshape(4, 5, 4, 2)
    within = groups.var(axis=1, ddof=1).mean(axis=0)
    between = groups.mean(axis=1).var(axis=0, ddof=1) - within / 5
    np.testing.assert_allclose(norm.prior_clips[:, 0, :], within / np.maximum(between, 1e-6 * within + 1e-12),
                               rtol=1e-3)
    back = SpeakerNormaliser.from_card(norm.to_card())
    assert back.shrinkage and np.array_equal(back.prior_clips, norm.prior_clips)
    np.testing.assert_array_equal(back.normalise(x, spk).x, norm.normalise(x, spk).x)


def test_shrinkage_with_too_few_training_speakers_keeps_the_min_clips_rule():
    x, speakers, train = vectors()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", shrinkage=True).fit(x, speakers)  # 2 speakers
    assert norm.prior_clips is None
    few = norm.normalise(x[:5], np.array(["a"] * 5, dtype=object))
    assert set(few.used) == {"population"}


def test_from_min_clips_up_shrinkage_changes_nothing():
    x, spk = speakers_with_known_variances()
    shrunk = SpeakerNormaliser(layout="vector", mode="speaker", shrinkage=True, scale="population").fit(x, spk)
    plain = SpeakerNormaliser(layout="vector", mode="speaker", scale="population").fit(x)
    rows = x[:40]
    who = np.array(["s0"] * 20 + ["s1"] * 10 + ["s2"] * 9 + ["s3"], dtype=object)  # 20, 10, 9 and 1 clips
    a, b = shrunk.normalise(rows, who), plain.normalise(rows, who)
    np.testing.assert_array_equal(a.x[:30], b.x[:30])
    assert list(a.used[[0, 20, 30, 39]]) == ["speaker (20 clips)", "speaker (10 clips)", "speaker (9 clips, shrunk)",
                                             "speaker (1 clip, shrunk)"]
    assert not np.allclose(a.x[30:], b.x[30:])


def test_a_population_by_speakers_counts_each_corpus_and_each_speaker_once():
    rng = np.random.default_rng(5)
    # corpus "big": one speaker with 200 clips at +10; corpus "small": two speakers of 10 clips at -2 and 0
    x = np.concatenate([rng.normal(10, 1, (200, 2)), rng.normal(-2, 1, (10, 2)), rng.normal(0, 1, (10, 2))])
    spk = np.array(["big:a"] * 200 + ["small:b"] * 10 + ["small:c"] * 10, dtype=object)
    by_clip = SpeakerNormaliser(layout="vector", mode="speaker", population_weighting="clips").fit(x, spk)
    by_speaker = SpeakerNormaliser(layout="vector", mode="speaker", population_weighting="speakers").fit(x, spk)
    means = {s: x[spk == s].mean(axis=0) for s in ("big:a", "small:b", "small:c")}
    expected = 0.5 * means["big:a"] + 0.25 * (means["small:b"] + means["small:c"])  # corpora once, speakers once
    np.testing.assert_allclose(by_speaker.population.mean, expected, rtol=1e-5)
    np.testing.assert_allclose(by_clip.population.mean, x.mean(axis=0), rtol=1e-5)  # the 200 clips dominate
    # law of total variance over the weighted speakers
    var = sum(w * (x[spk == s].var(axis=0) + (means[s] - expected) ** 2)
              for s, w in (("big:a", 0.5), ("small:b", 0.25), ("small:c", 0.25)))
    np.testing.assert_allclose(by_speaker.population.std, np.sqrt(var), rtol=1e-4)
    back = SpeakerNormaliser.from_card(by_speaker.to_card())
    assert back.population_weighting == "speakers"
    np.testing.assert_array_equal(back.normalise(x).x, by_speaker.normalise(x).x)


def test_cold_clip_moves_the_population_mean_towards_the_clip_by_one_over_one_plus_k():
    x, spk = speakers_with_known_variances()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", shrinkage=True, scale="population",
                             cold="clip").fit(x, spk)
    k, pop = norm.prior_clips, norm.population
    stranger = np.random.default_rng(6).normal(3, 1, (4, 3)).astype(np.float32)
    out = norm.normalise(stranger)  # no speaker: each clip is its own one-clip estimate of where its speaker sits
    mean = pop.mean + (stranger - pop.mean) / (1 + k)  # numpy reference, per row
    np.testing.assert_allclose(out.x, np.clip((stranger - mean) / (pop.std + 1e-6), -5, 5), rtol=1e-4, atol=1e-4)
    assert set(out.used) == {"clip (shrunk)"}
    # the feature that mostly tells speakers apart (smallest k) loses most of its offset; the population policy none
    plain = SpeakerNormaliser.from_card(dict(norm.to_card(), cold="population")).normalise(stranger)
    small = int(np.argmin(k))
    assert np.abs(out.x[:, small]).mean() < 0.7 * np.abs(plain.x[:, small]).mean()
    assert set(plain.used) == {"population"}
    # a row without a speaker among rows with speakers gets the same; the card carries the policy
    mixed = norm.normalise(stranger, np.array([None, "s0", None, "s0"], dtype=object))
    np.testing.assert_allclose(mixed.x[[0, 2]], out.x[[0, 2]], rtol=1e-6)
    assert SpeakerNormaliser.from_card(norm.to_card()).cold == "clip"


def test_cold_clip_of_a_spectrogram_takes_the_clips_speech_frames_per_band():
    x = np.concatenate([spectrograms() for _ in range(4)])
    for i, offset in enumerate((0.0, 6.0, -4.0, 9.0)):
        x[5 * i:5 * i + 5, :, 2:8, :] += offset
    spk = np.repeat(["a", "b", "c", "d"], 5).astype(object)
    norm = SpeakerNormaliser(layout="spectrogram", mode="speaker", shrinkage=True, scale="population",
                             floor=-100.0, cold="clip").fit(x, spk)
    out = norm.normalise(x[:3])
    band_means = x[:3, :, 2:8, :].mean(axis=2, keepdims=True)  # (clips, bands, 1, planes): speech frames only
    mean = norm.population.mean + (band_means - norm.population.mean) / (1 + norm.prior_clips)
    expected = np.clip((x[:3] - mean) / (norm.population.std + 1e-6), -5, 5)
    expected[:, :, [0, 1, 8, 9], :] = 0.0  # padding frames stay at 0 (the frames outside 2..7 of the fixture)
    np.testing.assert_allclose(out.x, expected, rtol=1e-4, atol=1e-4)


def _voices(seed: int = 11):
    """Six speakers, three of each gender; a gender moves feature 0 far (a voice's pitch), feature 1 a little."""
    rng = np.random.default_rng(seed)
    rows, spk, gender = [], [], []
    for i in range(6):
        g = "female" if i % 2 else "male"
        centre = np.array([8.0 if g == "female" else -8.0, 1.0 if g == "female" else -1.0, 0.0]) + rng.normal(0, 0.5, 3)
        rows.append(rng.normal(centre, 1.0, (15, 3)))
        spk += [f"c:{i}"] * 15
        gender += [g] * 15
    return np.concatenate(rows).astype(np.float32), np.array(spk, dtype=object), np.array(gender, dtype=object)


def test_cold_gender_centres_a_stranger_on_the_training_speakers_of_its_predicted_gender():
    x, spk, gender = _voices()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", scale="population", cold="gender").fit(x, spk, gender)
    assert set(norm.groups) == {"female", "male"} and norm.group_model["classes"] == ["female", "male"]
    np.testing.assert_allclose(norm.groups["female"].mean, x[gender == "female"].mean(axis=0), rtol=1e-5)
    stranger, _, who = _voices(seed=12)  # new speakers of both genders
    names, p = norm.gender_probabilities(stranger)
    told = np.asarray(names)[p.argmax(axis=1)]
    assert (told == who).mean() > 0.95
    out = norm.normalise(stranger)
    mean = np.stack([norm.groups[g].mean for g in told])  # numpy reference: the likelier gender's mean
    np.testing.assert_allclose(out.x, np.clip((stranger - mean) / (norm.population.std + 1e-6), -5, 5), rtol=1e-4,
                               atol=1e-4)
    assert out.used[0].startswith("population of ") and out.used[0].endswith(")")
    # the gender offset is gone from feature 0, where the whole population's mean leaves it
    plain = SpeakerNormaliser.from_card(dict(norm.to_card(), cold="population")).normalise(stranger)
    assert np.abs(out.x[:, 0]).mean() < 0.3 * np.abs(plain.x[:, 0]).mean()
    back = SpeakerNormaliser.from_card(norm.to_card())  # the card carries both genders' means and the classifier
    np.testing.assert_allclose(back.normalise(stranger).x, out.x, rtol=1e-5, atol=1e-5)
    # a speaker with its own statistics is not touched by the cold policy
    np.testing.assert_array_equal(norm.normalise(x, spk).x, plain_of(norm).normalise(x, spk).x)


def plain_of(norm):
    return SpeakerNormaliser.from_card(dict(norm.to_card(), cold="population"))


def test_cold_gender_without_two_speakers_of_each_gender_serves_the_population():
    x, spk, gender = _voices()
    few = gender.copy()
    few[spk != "c:1"] = "male"  # one female speaker only
    norm = SpeakerNormaliser(layout="vector", mode="speaker", cold="gender").fit(x, spk, few)
    assert norm.groups is None and set(norm.normalise(x[:3]).used) == {"population"}
    unknown = np.array([None] * len(x), dtype=object)
    assert SpeakerNormaliser(layout="vector", mode="speaker", cold="gender").fit(x, spk, unknown).groups is None


def test_neutral_enrolment_is_moved_by_the_training_speakers_offset_from_their_neutral_clips():
    rng = np.random.default_rng(13)
    rows, spk, labels = [], [], []
    for i in range(4):  # neutral clips sit 3 below a speaker's mix on feature 0 (calmer), the rest above
        centre = rng.normal(0, 5, 3)
        for j in range(12):
            lab = "neutral" if j < 3 else "angry"
            rows.append(centre + rng.normal(0, 0.3, 3) + ([-3.0, 0, 0] if lab == "neutral" else [1.0, 0, 0]))
            spk.append(f"c:{i}")
            labels.append(lab)
    x, spk, labels = np.array(rows, np.float32), np.array(spk, object), np.array(labels, object)
    norm = SpeakerNormaliser(layout="vector", mode="speaker", scale="population").fit(x, spk, labels=labels)
    expected = np.mean([x[spk == s].mean(0) - x[(spk == s) & (labels == "neutral")].mean(0) for s in set(spk)], axis=0)
    np.testing.assert_allclose(norm.neutral_offset, expected, rtol=1e-4, atol=1e-4)
    assert 2.5 < norm.neutral_offset[0] < 3.5
    enrol = norm.statistics(x[(spk == "c:0") & (labels == "neutral")], "enrolled")
    moved = norm.neutral_statistics(enrol)
    np.testing.assert_allclose(moved.mean, enrol.mean + norm.neutral_offset, rtol=1e-6)
    assert moved.source == "enrolled on neutral" and moved.clips == 3
    np.testing.assert_allclose(moved.mean, x[spk == "c:0"].mean(0), atol=0.5)  # near where training centred c:0
    back = SpeakerNormaliser.from_card(norm.to_card())
    np.testing.assert_array_equal(back.neutral_offset, norm.neutral_offset)
    assert SpeakerNormaliser(layout="vector", mode="speaker").fit(x, spk).neutral_offset is None  # no labels: none


def test_cold_gender_clip_shrinks_from_the_genders_mean_towards_the_clip():
    x, spk, gender = _voices()
    norm = SpeakerNormaliser(layout="vector", mode="speaker", scale="population", shrinkage=True,
                             cold="gender_clip").fit(x, spk, gender)
    stranger, _, _ = _voices(seed=14)
    names, p = norm.gender_probabilities(stranger)
    prior = np.stack([norm.groups[names[j]].mean for j in p.argmax(axis=1)])
    mean = prior + (stranger - prior) / (1 + norm.prior_clips)  # one clip's empirical-Bayes mean, gender as prior
    out = norm.normalise(stranger)
    np.testing.assert_allclose(out.x, np.clip((stranger - mean) / (norm.population.std + 1e-6), -5, 5), rtol=1e-4,
                               atol=1e-4)
    assert out.used[0].startswith("population of ") and out.used[0].endswith(", shrunk to the clip")
