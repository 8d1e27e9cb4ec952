"""Speaker normalisation: one object that fits, transforms and is written whole into the model card.

Who is speaking (voice, microphone, room) moves every acoustic measure more than how they feel, so the field's
standard fix for speaker-independent emotion recognition is to z-score each speaker on that speaker's own
statistics. That needs recordings of the speaker; a user with one file from a stranger has none. This module is
the one place that decides which statistics each row gets, and says so:

    norm = SpeakerNormaliser(layout="vector", mode="speaker").fit(x_train)   # population statistics
    out = norm.normalise(x, speakers=spk)                  # each speaker its own statistics (transductive)
    out = norm.normalise(x, speakers=spk, enrolment={spk: x_enrol})       # statistics of enrolment clips
    out = norm.normalise(x)                                # no speaker: the population's (cold)
    out.x, out.used                                        # normalised rows; per row which statistics
    card["normalisation"] = norm.to_card()                 # policy constants and population statistics
    norm = SpeakerNormaliser.from_card(card["normalisation"])

Layouts: `vector` (rows of utterance features, statistics per feature over a speaker's clips) and `spectrogram`
(rows of (bands, frames, planes) log-mel dB; statistics per band and plane over the speaker's frames). In a
spectrogram, frames at the floor of the dB scale are padding (the clip was padded to the window with zeros)
or digital silence: they are left out of every statistic and set to 0 (the mean) after normalisation.

Modes: `speaker` (a speaker's own or enrolment statistics; the population's for a row with none, or with fewer
than `min_clips` clips), `population` (always the training population's: what the model meets with no speaker),
`utterance` (spectrograms: each clip on its own frames; needs no speaker) and `none`.

Population statistics (`population`): over every training clip (`clips`), or with each corpus counting once and
each speaker once within its corpus (`speakers`): one speaker or corpus with many clips (TESS's OAF alone has
1,400) would otherwise define what "a stranger" sounds like. The mean is the weighted mean of the speakers'
means, the variance the weighted within-speaker variance plus the spread of the speakers' means around it.

A row with no speaker statistics (one file of a stranger: `cold`) gets the population's statistics, or with
`cold: clip` and shrinkage, the empirical-Bayes estimate of its speaker's mean from that one clip: the
population's mean moved towards the clip's own values by 1 / (1 + k) per feature. Where k is small (a feature
that mostly tells speakers apart: a voice's level in a band, a microphone's colour) the clip itself says where
its speaker sits; where k is large (a feature that moves with the emotion) the population's mean stays.
With `cold: gender`, the mean is that of the training speakers of the clip's gender (female and male voices sit
far apart in pitch and spectrum, so one population's mean suits neither), the gender told from the clip itself
by a logistic regression on its population z-scores (per feature; per band for a spectrogram) fitted on the
training speakers' clips and their recorded gender (the likelier gender's mean: a regularised classifier's
probabilities are too timid to weight the two means by). `cold: gender_clip` takes that mean as the prior of the
clip's own shrunk estimate (as `clip` takes the population's). Both ride in the card (`groups`, `group_model`), applied with numpy alone.

With `shrinkage`, a speaker with fewer than `min_clips` clips is not ignored (the population's statistics) but
gets the empirical-Bayes estimate of its mean: the population's moved towards the speaker's by n / (n + k), per
feature (per band for a spectrogram), where k, fitted on the training speakers, is the ratio of the clip-to-clip
variance within a speaker to the variance between speakers' means. A feature that mostly tells speakers apart
(a voice's pitch, a microphone's colour) has a small k and is learnt from a clip or two; one that mostly moves
with the emotion has a large k and stays near the population's. So five enrolment recordings help. From
min_clips clips up nothing changes (the speaker's own mean, as in training), so training and the transductive
figure are those without shrinkage.

Which statistics a speaker gets does not depend on the labels, ever; it does depend on the speaker's unlabeled
audio, which is why cross-validation reports the three ways a user meets the model (transductive, enrolled,
cold) separately. Keras-free (numpy only), so the data stages, predict and an exported bundle can use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.errors import UserError

LAYOUTS = ("vector", "spectrogram")
MODES = ("speaker", "population", "utterance", "none")
SCALES = ("speaker", "population")
POPULATIONS = ("clips", "speakers")
COLD = ("population", "clip", "gender", "gender_clip")  # a row with no speaker statistics: the population's, shrunk
# towards its own, the population of the speakers of its (predicted) gender, or that shrunk towards its own
GROUP_MIN_SPEAKERS = 2  # cold `gender`: each gender needs this many training speakers, else the population's
GROUP_C = 0.01  # the gender classifier's inverse L2 strength (logistic regression on population z-scores)  # how the population's statistics weight the training rows (docstring)
CARD_VERSION = 1


@dataclass(frozen=True)
class Statistics:
    mean: np.ndarray
    std: np.ndarray
    clips: int
    source: str  # speaker | enrolled | population | utterance
    shrunk: bool = False  # the mean was shrunk towards the population's (SpeakerNormaliser.shrinkage)

    def describe(self) -> str:
        if self.source in ("population", "utterance", "none"):
            return self.source
        return f"{self.source} ({self.clips} clip{'s' if self.clips != 1 else ''}{', shrunk' if self.shrunk else ''})"


@dataclass
class Normalised:
    x: np.ndarray     # float32 normalised rows
    used: np.ndarray  # per row: which statistics normalised it ("speaker (45 clips)", "population", ...)


@dataclass
class SpeakerNormaliser:
    layout: str = "vector"
    mode: str = "speaker"
    min_clips: int = 10      # a speaker with fewer clips than this gets the population's statistics
    scale: str = "speaker"   # whose standard deviation divides a speaker's rows: its own, or the population's
                             # (half the numbers to estimate from a few enrolment clips)
    clip: float = 5.0        # normalised values are clipped to +-clip: one odd file cannot dominate
    eps: float = 1e-6        # added to the standard deviation
    floor: float | None = None  # spectrogram: the dB scale's floor; frames at it are padding or silence
    shrinkage: bool = False  # under min_clips clips, a speaker's mean shrunk towards the population's (docstring)
    population_weighting: str = "clips"  # clips | speakers: each corpus, and each speaker within it, counts once
    cold: str = "population"  # a row with no speaker: the population's statistics | clip: with shrinkage, the
                              # population's mean moved towards the clip's own by 1 / (1 + k) | gender | gender_clip
    population: Statistics | None = field(default=None, repr=False)
    groups: dict | None = field(default=None, repr=False)  # cold `gender`: {gender: Statistics} of the training rows
    group_model: dict | None = field(default=None, repr=False)  # {"classes", "coef" (G, F), "intercept" (G)}
    neutral_offset: np.ndarray | None = field(default=None, repr=False)  # a speaker's mean - its neutral clips'
    prior_clips: np.ndarray | None = field(default=None, repr=False)  # k per feature, fitted with the population

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.cold not in COLD:
            raise ValueError(f"cold must be one of {COLD}, got {self.cold!r}")
        if self.population_weighting not in POPULATIONS:
            raise ValueError(f"population_weighting must be one of {POPULATIONS}, got {self.population_weighting!r}")
        if self.mode == "utterance" and self.layout != "spectrogram":
            raise UserError("utterance normalisation needs frames: it applies to spectrogram inputs only")

    # ------------------------------------------------------------------------------------------ statistics
    def _frames(self, x: np.ndarray) -> np.ndarray:
        """(rows, bands, frames, planes) -> (n valid frames, bands, planes): the frames that carry sound."""
        x = np.asarray(x, dtype=np.float32)
        moved = np.moveaxis(x, 2, 1)  # (rows, frames, bands, planes)
        valid = self.valid_frames(x)
        return moved[valid]

    def valid_frames(self, x: np.ndarray) -> np.ndarray:
        """(rows, frames) bool: frames whose loudest band of the first plane is above the floor (+1 dB)."""
        if self.floor is None:
            return np.ones((x.shape[0], x.shape[2]), dtype=bool)
        return np.asarray(x)[..., 0].max(axis=1) > self.floor + 1.0

    def statistics(self, x: np.ndarray, source: str = "speaker") -> Statistics:
        """Mean and standard deviation of raw rows (one speaker's, or the training population's)."""
        acc = self.accumulator()
        acc.add(x)
        return acc.statistics(source)

    def accumulator(self) -> "Accumulator":
        """Running sums of a speaker's rows, added a few at a time (predict reads a folder in chunks)."""
        return Accumulator(self)

    def fit(self, x: np.ndarray, speakers=None, genders=None, labels=None) -> "SpeakerNormaliser":
        """Population statistics of the training rows (raw): what a row with no speaker statistics gets (over
        every clip, or each corpus and speaker once: population_weighting); with shrinkage, also k per feature
        from the training speakers (`speakers`: one per row); with cold `gender`, each gender's statistics and
        the classifier that tells a clip's gender (`genders`: one per row, None where unknown); with `labels`,
        the offset from a speaker's neutral clips to its mean (fit_neutral_offset)."""
        self.population = self.population_of(x, speakers)
        self.prior_clips = None
        self.groups = self.group_model = None
        self.neutral_offset = None
        if self.cold in ("gender", "gender_clip") and self.mode == "speaker" and genders is not None:
            self.fit_groups(x, speakers, genders)
        if self.mode == "speaker" and speakers is not None and labels is not None:
            self.fit_neutral_offset(x, speakers, labels)
        if self.shrinkage and self.mode == "speaker":
            if speakers is None:
                raise ValueError("shrinkage: fit() needs the training rows' speakers")
            self.prior_clips = self.fit_prior_clips(x, speakers)
        return self

    def fit_neutral_offset(self, x: np.ndarray, speakers, labels) -> None:
        """The training speakers' mean offset from the mean of their neutral clips to the mean of all their clips
        (per feature; per band for a spectrogram). A user enrols with everyday speech, neutral, while training
        centred each speaker on its acted mix of emotions: enrolment on neutral clips alone adds this offset
        (neutral_statistics). Needs 2 training speakers with neutral and other clips; else none."""
        speakers, labels = np.asarray(speakers, dtype=object), np.asarray(labels, dtype=object)
        neutral = labels == "neutral"
        offsets = []
        for spk in dict.fromkeys(speakers.tolist()):
            mine = speakers == spk
            if (mine & neutral).any() and (mine & ~neutral).any():
                offsets.append(self.statistics(x[mine]).mean - self.statistics(x[mine & neutral]).mean)
        self.neutral_offset = np.mean(offsets, axis=0).astype(np.float32) if len(offsets) >= 2 else None

    def neutral_statistics(self, stats: Statistics) -> Statistics:
        """A speaker's statistics taken from neutral clips only, moved to where its acted mix would centre it."""
        if self.neutral_offset is None:
            return stats
        return Statistics((stats.mean + self.neutral_offset).astype(np.float32), stats.std, stats.clips,
                          "enrolled on neutral", stats.shrunk)

    def population_of(self, x: np.ndarray, speakers=None) -> Statistics:
        """The statistics of raw rows as a population: over every clip, or by speakers (population_weighting)."""
        if self.population_weighting == "speakers" and speakers is not None:
            return self.speaker_weighted_statistics(x, speakers)
        return self.statistics(x, "population")

    def fit_groups(self, x: np.ndarray, speakers, genders) -> None:
        """cold `gender`: the statistics of each gender's training rows and a logistic regression telling the
        gender from a clip's population z-scores. Left unfitted (the population's statistics serve a stranger)
        when a gender has fewer than GROUP_MIN_SPEAKERS speakers or fewer than two genders are known."""
        from sklearn.linear_model import LogisticRegression

        genders = np.asarray([None if g is None or (isinstance(g, float) and np.isnan(g)) or str(g) in ("", "unknown")
                              else str(g) for g in genders], dtype=object)
        spk = np.asarray(speakers if speakers is not None else np.arange(len(x)), dtype=object)
        known = np.array([g is not None for g in genders])
        names = sorted(set(genders[known].tolist()))
        if len(names) < 2 or any(len(set(spk[genders == g].tolist())) < GROUP_MIN_SPEAKERS for g in names):
            return
        self.groups = {g: self.population_of(x[genders == g], None if speakers is None else spk[genders == g])
                       for g in names}
        values, ok = self.clip_values(x)
        rows = known & ok
        clf = LogisticRegression(C=GROUP_C, max_iter=2000).fit(self._z(values[rows]), genders[rows])
        coef, intercept = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # binary: sklearn's one row is the second class's logit against the first's
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        self.group_model = {"classes": [str(c) for c in clf.classes_], "coef": coef.astype(np.float32),
                            "intercept": intercept.astype(np.float32)}

    def _z(self, values: np.ndarray) -> np.ndarray:
        """(rows, features) clip values as z-scores of the population (clipped): the gender classifier's input."""
        pop = self._population()
        return np.clip((values - pop.mean.reshape(-1)) / (pop.std.reshape(-1) + self.eps), -self.clip, self.clip)

    def gender_probabilities(self, x: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(genders, (rows, genders) probabilities) of raw rows, from the fitted classifier."""
        values, _ = self.clip_values(x)
        m = self.group_model
        logits = self._z(values) @ np.asarray(m["coef"], np.float64).T + np.asarray(m["intercept"], np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return list(m["classes"]), p / p.sum(axis=1, keepdims=True)

    def speaker_weighted_statistics(self, x: np.ndarray, speakers) -> Statistics:
        """Population statistics in which each corpus counts once and each speaker once within its corpus (the
        corpus is the speaker id's prefix, "emodb:03"): the weighted mean of the speakers' means, and the weighted
        mean of their variances plus their means' spread around it (the law of total variance)."""
        speakers = np.asarray(speakers, dtype=object)
        if len(speakers) != len(x):
            raise ValueError(f"{len(speakers)} speakers for {len(x)} rows")
        per_speaker = {spk: self.statistics(x[speakers == spk]) for spk in dict.fromkeys(speakers.tolist())}
        corpus = {spk: str(spk).split(":", 1)[0] if ":" in str(spk) else "" for spk in per_speaker}
        speakers_in = {c: sum(1 for s in corpus if corpus[s] == c) for c in set(corpus.values())}
        weight = {spk: 1.0 / (len(speakers_in) * speakers_in[corpus[spk]]) for spk in per_speaker}
        mean = sum(weight[s] * st.mean.astype(np.float64) for s, st in per_speaker.items())
        var = sum(weight[s] * (np.square(st.std.astype(np.float64)) + np.square(st.mean - mean))
                  for s, st in per_speaker.items())
        return Statistics(mean.astype(np.float32), np.sqrt(var).astype(np.float32), len(x), "population")

    def clip_values(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, features) one value per clip and feature: a vector row as it is; a spectrogram's mean of each
        band and plane over its valid frames. And a bool per row: has a value (a spectrogram of only floor
        frames has none)."""
        x = np.asarray(x, dtype=np.float32)
        if self.layout == "vector":
            return x.reshape(len(x), -1).astype(np.float64), np.ones(len(x), dtype=bool)
        valid = self.valid_frames(x)  # (rows, frames)
        frames = valid.sum(axis=1)
        sums = np.einsum("rbfp,rf->rbp", x.astype(np.float64), valid.astype(np.float64))
        values = sums / np.maximum(frames, 1)[:, None, None]
        return values.reshape(len(x), -1), frames > 0

    def fit_prior_clips(self, x: np.ndarray, speakers) -> np.ndarray | None:
        """k = (variance of clips within a speaker) / (variance of the speakers' true means), per feature: the
        one-way random-effects estimate (method of moments) over the training speakers. None, with the
        min_clips rule kept, when fewer than 3 speakers have 2 or more clips."""
        values, ok = self.clip_values(x)
        speakers = np.asarray(speakers, dtype=object)
        means, counts, within, dof = [], [], 0.0, 0
        for spk in dict.fromkeys(speakers[ok].tolist()):
            rows = values[ok & (speakers == spk)]
            if len(rows) < 2:
                continue
            centre = rows.mean(axis=0)
            means.append(centre)
            counts.append(len(rows))
            within = within + np.square(rows - centre).sum(axis=0)
            dof += len(rows) - 1
        if len(means) < 3:
            return None
        within_var = within / dof
        between_var = np.var(np.stack(means), axis=0, ddof=1) - within_var * np.mean(1.0 / np.asarray(counts))
        k = within_var / np.maximum(between_var, 1e-6 * within_var + 1e-12)
        shape = self.population.mean.shape
        return np.clip(k, 0.0, 1e6).astype(np.float32).reshape(shape)

    # ------------------------------------------------------------------------------------------ transform
    def transform(self, x: np.ndarray, stats: Statistics) -> np.ndarray:
        """Rows z-scored on `stats`, clipped to +-clip; a spectrogram's floor frames set to 0."""
        x = np.asarray(x, dtype=np.float32)
        out = (x - stats.mean) / (stats.std + np.float32(self.eps))
        np.clip(out, -self.clip, self.clip, out=out)
        if self.layout == "spectrogram" and self.floor is not None:
            out *= self.valid_frames(x)[:, None, :, None]
        return out.astype(np.float32, copy=False)

    def normalise(self, x: np.ndarray, speakers=None, given: dict | None = None) -> Normalised:
        """Every row normalised, and which statistics each got.

        speakers: a speaker per row (None: no row has a speaker). given: {speaker: Statistics} taken elsewhere
        than from the rows scored here: a speaker's enrolment clips (not themselves scored), or every recording
        of the speaker accumulated by predict. With mode `speaker`, a speaker gets its given statistics, else
        those of its own rows in `x`; either only from at least min_clips clips, otherwise (and for a row with
        no speaker) the population's."""
        x = np.asarray(x, dtype=np.float32)
        n = len(x)
        if self.mode == "none":
            return Normalised(x.astype(np.float32, copy=True), np.full(n, "none", dtype=object))
        if self.mode == "utterance":
            out = np.empty_like(x)
            for i in range(n):
                out[i] = self.transform(x[i:i + 1], self.statistics(x[i:i + 1], "utterance"))[0]
            return Normalised(out, np.full(n, "utterance", dtype=object))
        pop = self._population()
        if self.mode == "population":
            return Normalised(self.transform(x, pop), np.full(n, pop.describe(), dtype=object))
        if speakers is None:
            return self.normalise_cold(x)
        speakers = np.asarray(speakers, dtype=object)
        if len(speakers) != n:
            raise ValueError(f"{len(speakers)} speakers for {n} rows")
        out = np.empty_like(x)
        used = np.empty(n, dtype=object)
        for spk in dict.fromkeys(speakers.tolist()):
            rows = np.array([s == spk for s in speakers]) if spk is None else speakers == spk
            if spk is None:
                cold = self.normalise_cold(x[rows])
                out[rows], used[rows] = cold.x, cold.used
                continue
            elif given is not None and spk in given:
                stats = self.choose(given[spk])
            else:
                stats = self.choose(self.statistics(x[rows], "speaker"))
            out[rows] = self.transform(x[rows], stats)
            used[rows] = stats.describe()
        return Normalised(out, used)

    def normalise_cold(self, x: np.ndarray) -> Normalised:
        """Rows with no speaker statistics, centred on the population's mean; with cold `gender` (fitted), on the
        mean of the training speakers of the row's likelier gender instead; with `clip` or `gender_clip` (and
        shrinkage fitted), that centre moved towards the row's own values by 1 / (1 + k), per feature: the
        empirical-Bayes estimate of its speaker's mean from one clip, the population or the gender as prior."""
        pop = self._population()
        n = len(x)
        by_gender = self.cold in ("gender", "gender_clip") and self.group_model is not None and n > 0
        to_clip = self.cold in ("clip", "gender_clip") and self.prior_clips is not None and n > 0
        if not (by_gender or to_clip):
            return Normalised(self.transform(x, pop), np.full(n, pop.describe(), dtype=object))
        centre = np.broadcast_to(pop.mean.reshape(-1).astype(np.float64), (n, pop.mean.size))
        used = np.full(n, "population", dtype=object)
        if by_gender:
            names, p = self.gender_probabilities(x)
            likelier = p.argmax(axis=1)
            centre = np.stack([self.groups[names[j]].mean.reshape(-1) for j in likelier]).astype(np.float64)
            used = np.array([f"population of {names[j]} speakers ({p[i, j]:.2f})" for i, j in enumerate(likelier)],
                            dtype=object)
        if to_clip:
            values, ok = self.clip_values(x)
            weight = 1.0 / (1.0 + self.prior_clips.reshape(-1).astype(np.float64))
            centre = np.where(ok[:, None], centre + weight * (values - centre), centre)
            used = np.array(["clip (shrunk)" if u == "population" else f"{u}, shrunk to the clip" for u in used],
                            dtype=object)
        stats = Statistics(centre.astype(np.float32).reshape((n,) + pop.mean.shape), pop.std, 1, "clip", to_clip)
        return Normalised(self.transform(x, stats), used)

    def choose(self, stats: Statistics) -> Statistics:
        """A speaker's statistics when taken from at least min_clips clips, else the population's; with scale
        `population`, the speaker's mean and the population's standard deviation. With shrinkage, under
        min_clips clips: the population's standard deviation and its mean moved towards the speaker's by
        n / (n + k)."""
        if stats.clips < self.min_clips:
            pop = self._population()
            if self.prior_clips is None:
                return pop
            weight = stats.clips / (stats.clips + self.prior_clips)
            mean = (pop.mean + weight * (stats.mean - pop.mean)).astype(np.float32)
            return Statistics(mean, pop.std, stats.clips, stats.source, shrunk=True)
        if self.scale == "population":
            return Statistics(stats.mean, self._population().std, stats.clips, stats.source)
        return stats

    def _population(self) -> Statistics:
        if self.population is None:
            raise ValueError("SpeakerNormaliser.fit() first: no population statistics")
        return self.population

    # ------------------------------------------------------------------------------------------ card
    def to_card(self) -> dict:
        """Everything needed to normalise as training did: the policy constants and the population."""
        out = {"version": CARD_VERSION, "layout": self.layout, "mode": self.mode, "min_clips": self.min_clips,
               "scale": self.scale, "clip": self.clip, "eps": self.eps, "floor": self.floor,
               "shrinkage": self.shrinkage, "population_weighting": self.population_weighting, "cold": self.cold,
               "prior_clips": None if self.prior_clips is None else self.prior_clips.tolist()}
        if self.population is not None:
            out["population"] = {"mean": self.population.mean.tolist(), "std": self.population.std.tolist(),
                                 "clips": self.population.clips}
        if self.neutral_offset is not None:
            out["neutral_offset"] = self.neutral_offset.tolist()
        if self.groups is not None:
            out["groups"] = {g: {"mean": st.mean.tolist(), "clips": st.clips} for g, st in self.groups.items()}
            out["group_model"] = {"classes": self.group_model["classes"],
                                  "coef": np.asarray(self.group_model["coef"]).tolist(),
                                  "intercept": np.asarray(self.group_model["intercept"]).tolist()}
        return out

    @classmethod
    def from_card(cls, card: dict) -> "SpeakerNormaliser":
        if not isinstance(card, dict) or card.get("version") != CARD_VERSION:
            raise UserError("the model card's normalisation is missing or from another version: re-train the model "
                            "(dvc repro train)")
        pop = card.get("population")
        population = None if pop is None else Statistics(np.asarray(pop["mean"], np.float32),
                                                         np.asarray(pop["std"], np.float32),
                                                         int(pop["clips"]), "population")
        prior = card.get("prior_clips")
        groups = None if population is None or card.get("groups") is None else {
            g: Statistics(np.asarray(v["mean"], np.float32), population.std, int(v["clips"]), "population")
            for g, v in card["groups"].items()}
        offset = card.get("neutral_offset")
        model = card.get("group_model")
        model = None if model is None else {"classes": list(model["classes"]),
                                            "coef": np.asarray(model["coef"], np.float32),
                                            "intercept": np.asarray(model["intercept"], np.float32)}
        return cls(layout=card["layout"], mode=card["mode"], min_clips=int(card["min_clips"]),
                   scale=card.get("scale", "speaker"), clip=float(card["clip"]), eps=float(card["eps"]),
                   floor=card.get("floor"), shrinkage=bool(card.get("shrinkage", False)),
                   population_weighting=card.get("population_weighting", "clips"),
                   cold=card.get("cold", "population"), population=population, groups=groups, group_model=model,
                   neutral_offset=None if offset is None else np.asarray(offset, np.float32),
                   prior_clips=None if prior is None else np.asarray(prior, np.float32))


class Accumulator:
    """Running sums of raw rows for one set of statistics (float64, shifted by the first row's mean so the
    variance does not cancel): statistics() equals the mean and std of every row added, in any grouping."""

    def __init__(self, norm: SpeakerNormaliser):
        self.norm = norm
        self.clips = 0
        self.count = 0
        self.shift = self.total = self.squares = None

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return
        if self.norm.layout == "vector":
            values = x.reshape(len(x), -1).astype(np.float64)
        else:
            values = self.norm._frames(x).astype(np.float64).reshape(-1, x.shape[1] * x.shape[3])
        self.clips += len(x)
        self.shape = x.shape[1:] if self.norm.layout == "vector" else (x.shape[1], 1, x.shape[3])
        if len(values) == 0:
            return
        if self.shift is None:
            self.shift = values.mean(axis=0)
            self.total = np.zeros_like(self.shift)
            self.squares = np.zeros_like(self.shift)
        centred = values - self.shift
        self.total += centred.sum(axis=0)
        self.squares += np.square(centred).sum(axis=0)
        self.count += len(values)

    def statistics(self, source: str = "speaker") -> Statistics:
        if self.clips == 0:
            raise ValueError("statistics of no rows")
        if self.count == 0:  # only floor frames (padding, digital silence): nothing to learn, identity
            return Statistics(np.zeros(self.shape, np.float32), np.ones(self.shape, np.float32), self.clips, source)
        mean_c = self.total / self.count
        var = np.maximum(self.squares / self.count - np.square(mean_c), 0.0)
        mean, std = (mean_c + self.shift).reshape(self.shape), np.sqrt(var).reshape(self.shape)
        return Statistics(mean.astype(np.float32), std.astype(np.float32), self.clips, source)
