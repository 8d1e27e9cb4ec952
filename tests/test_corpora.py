"""Corpus adapters on tiny fixture trees named exactly as the releases name them (as each adapter's docstring describes).

Adapters read names and layout only, so the fixture files hold a few bytes, not audio.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.corpora import cremad, emodb, esd, jl, ravdess, savee, tess
from pipeline.corpora.base import Entry, Excluded, Rejected, walk_audio
from pipeline.errors import ParamsError

ADAPTERS = {m.NAME: m for m in (ravdess, cremad, tess, savee, jl, esd, emodb)}
TARGETS = {"angry", "happy", "sad", "neutral", "fearful", "disgust", "surprise"}
SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def touch(root: Path, *rels: str, content: str = "RIFF") -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)


# --- Fixtures: one builder per corpus, covering its quirks and malformed names ---------------

def build_ravdess(root: Path) -> Path:
    touch(root,
          "Actor_01/03-01-05-01-01-01-01.wav",   # angry, statement 01, actor 01 (male)
          "Actor_01/03-01-01-01-02-02-01.wav",   # neutral, statement 02
          "Actor_02/03-01-02-02-01-01-02.wav",   # calm (dropped by default), female
          "Actor_02/03-01-08-01-01-01-02.wav",   # surprise
          "actor_03/03-01-04-01-01-01-03.WAV",   # folder and extension case differ
          "Actor_12/03-02-03-01-01-01-12.wav",   # song -> Excluded by default
          "audio_speech_actors_01-24/Actor_01/03-01-05-01-01-01-01.wav",  # Kaggle's second copy
          "Actor_01/03-01-09-01-01-01-01.wav",   # emotion 09 unknown
          "Actor_01/03-01-05-01-01-01.wav",      # six fields
          "Actor_01/03-01-05-01-01-01-02.wav",   # actor 02 filed under Actor_01
          "Actor_01/03-01-05-01-01-03-01.wav",   # repetition 03
          "extra/03-01-05-01-01-01-25.wav",      # actor 25
          "Actor_01/readme.txt", "Actor_01/._03-01-05-01-01-01-01.wav")  # not audio
    return root


def build_cremad(root: Path) -> Path:
    touch(root,
          "AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1002_IEO_HAP_HI.wav",
          "AudioWAV/1091_WSI_NEU_XX.wav", "AudioWAV/1003_TSI_SAD_LO.wav",
          "AudioWAV/1004_ITS_FEA_MD.wav", "AudioWAV/1005_MTI_DIS_XX.wav",
          "AudioWAV/1000_DFA_ANG_XX.wav", "AudioWAV/1092_DFA_ANG_XX.wav",  # actors out of range
          "AudioWAV/1001_ABC_ANG_XX.wav",    # sentence code unknown
          "AudioWAV/1001_DFA_SUR_XX.wav",    # emotion code unknown
          "AudioWAV/1001_DFA_ANG_ZZ.wav",    # level unknown
          "AudioWAV/1001_DFA_ANG.wav",       # three fields
          "AudioMP3/1001_DFA_ANG_XX.mp3")    # another rendition of the same recording
    (root / "VideoDemographics.csv").write_text(
        "\ufeffActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1002,21,Female,Caucasian,Not Hispanic\n1003,21,Female,Caucasian,Not Hispanic\n",
        encoding="utf-8")
    return root


TESS_WRAP = "TESS Toronto emotional speech set data"


def build_tess(root: Path) -> Path:
    w = TESS_WRAP
    touch(root,
          f"{w}/OAF_angry/OAF_back_angry.wav",
          f"{w}/OAF_Fear/OAF_back_fear.wav",
          f"{w}/OAF_Pleasant_surprise/OAF_back_ps.wav",
          f"{w}/YAF_pleasant_surprised/YAF_dog_ps.wav",
          f"{w}/OAF_neutral/OA_bite_neutral.wav",       # truncated prefix: speaker from folder
          f"{w}/OAF_Sad/OAF_back_sad.wav",
          f"{w}/YAF_disgust/YAF_back_disgust.wav",
          f"{w}/OAF_happy/OAF_wire_happy.wav",
          f"{w}/flat/OAF_wire_happy.wav",               # same stem elsewhere: utt_id made unique
          f"{w}/flat/YAF_chair_ps.wav",                 # flat re-packaging: name gives everything
          f"{w}/OAF_angry/OAF_back_sad.wav",            # emotion contradicts the folder
          f"{w}/YAF_sad/OAF_door_sad.wav",              # speaker contradicts the folder
          f"{w}/OAF_happy/back.wav",                    # no speaker/emotion in the name
          f"{w}/misc/XYZ_back_angry.wav")               # no folder, unknown speaker
    return root


def build_savee(root: Path) -> Path:
    touch(root,
          "AudioData/DC/a01.wav", "AudioData/DC/sa01.wav", "AudioData/DC/su15.wav",
          "AudioData/JE/n30.wav", "AudioData/JK/d03.wav", "AudioData/KL/f02.wav",
          "AudioData/KL/h01.wav",
          "AudioData/DC/a16.wav",     # anger has 15 sentences
          "AudioData/DC/n31.wav",     # neutral has 30
          "AudioData/DC/x01.wav",     # unknown code
          "AudioData/DC/s01.wav",     # 's' alone is no code
          "AudioData/other/a01.wav")  # no speaker anywhere
    return root


JL_RAW = "Raw JL corpus (unchecked and unannotated)/JL(wav+txt)"


def build_jl(root: Path) -> Path:
    touch(root,
          f"{JL_RAW}/female1_angry_10a_1.wav", f"{JL_RAW}/male2_excited_1b_2.wav",
          f"{JL_RAW}/male1_anxious_3a_1.wav", f"{JL_RAW}/female2_sad_5b_1.wav",
          f"{JL_RAW}/male1_bored_1a_1.wav",       # emotion unknown
          f"{JL_RAW}/female3_angry_1a_1.wav",     # speaker unknown
          f"{JL_RAW}/female1_angry.wav",          # name incomplete
          # the partial lower-case copy of the raw folder and a selected-files folder
          "raw jl corpus (unchecked and unannotated)/JL(wav+txt)/female1_angry_10a_1.wav",
          "Select1_female1/female1_angry_10a_1.wav")
    (root / JL_RAW / "female1_angry_10a_1.txt").write_text("Tony, the waiter\n")
    return root


ESD_WRAP = "Emotion Speech Dataset"


def build_esd(root: Path) -> Path:
    w = ESD_WRAP
    touch(root,
          f"{w}/0011/Angry/0011_000351.wav",
          f"{w}/0011/Happy/train/0011_000701.wav",         # train/evaluation/test sub-folders
          f"{w}/0011/Neutral/evaluation/0011_000001.wav",
          f"{w}/0012/Sad/test/0012_001051.wav",
          f"{w}/0020/Surprise/0020_001401.wav",
          f"{w}/0001/Angry/0001_000351.wav",               # Mandarin: Excluded by default
          f"{w}/0010/Happy/train/0010_000701.wav",
          f"{w}/0011/Angry/0011_351.wav",                  # utterance not six digits
          f"{w}/0011/Angry/0012_000352.wav",               # speaker contradicts the folder
          f"{w}/0011/0011_000353.wav",                     # no emotion folder
          f"{w}/0011/Calm/0011_000354.wav",                # not an ESD emotion
          f"{w}/0021/Angry/0021_000351.wav")               # speaker out of range
    (root / w / "0011" / "0011.txt").write_text(
        "0011_000001\tAuthor of the danger trail.\tNeutral\n"
        "0011_000351\tThe nine the eggs.\tAngry\n")
    return root


def build_emodb(root: Path) -> Path:
    touch(root,
          "wav/03a01Fa.wav", "wav/08b10Wb.wav", "wav/16a05Lc.wav", "wav/13a02Ta.wav",
          "wav/11b03Ea.wav", "wav/12a07Ac.wav", "wav/15b09Nd.wav",
          "wav/04a01Fa.wav",   # speaker 04 not in the corpus
          "wav/03c01Fa.wav",   # text code c01
          "wav/03a11Fa.wav",   # text code a11
          "wav/03a01Xa.wav",   # emotion letter X
          "wav/03a01F.wav",    # no version letter
          "lablaut/03a01Fa.lab")
    return root


BUILDERS = {"ravdess": build_ravdess, "cremad": build_cremad, "tess": build_tess,
            "savee": build_savee, "jl": build_jl, "esd": build_esd, "emodb": build_emodb}
# (entries, rejected, excluded) with default options
EXPECTED = {"ravdess": (5, 5, 2), "cremad": (6, 6, 1), "tess": (10, 4, 0), "savee": (7, 5, 0),
            "jl": (4, 3, 2), "esd": (5, 5, 2), "emodb": (7, 5, 0)}


def run(adapter, root: Path, options: dict | None = None) -> dict[str, object]:
    """prepare() with the invariants every adapter keeps; items keyed by path relative to root."""
    items = list(adapter.prepare(root, options or {}))
    assert sorted(it.path for it in items) == sorted(walk_audio(root)), "each file exactly once"
    entries = [it for it in items if isinstance(it, Entry)]
    utt_ids = [e.utt_id.lower() for e in entries]
    assert len(set(utt_ids)) == len(utt_ids), "utt_id unique"
    for e in entries:
        assert SAFE.match(e.utt_id), e.utt_id
        assert e.corpus == adapter.NAME and e.speaker.startswith(f"{adapter.NAME}:")
        assert e.original_label in adapter.LABEL_MAP
        assert e.gender in ("male", "female", None)
    for it in items:
        assert it.corpus == adapter.NAME
        if not isinstance(it, Entry):
            assert it.reason
    return {it.path.relative_to(root).as_posix(): it for it in items}


def kinds(items: dict) -> tuple[int, int, int]:
    values = list(items.values())
    return tuple(sum(isinstance(v, t) for v in values) for t in (Entry, Rejected, Excluded))


def label(adapter, entry: Entry) -> str | None:
    return adapter.LABEL_MAP[entry.original_label]


# --- Every adapter -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ADAPTERS)
def test_module_interface(name):
    m = ADAPTERS[name]
    assert m.NAME == name and re.match(r"^[A-Z]+$", m.DISPLAY)
    assert set(m.LABEL_MAP.values()) <= TARGETS | {None}
    assert all(k == k.lower() for k in m.LABEL_MAP)
    assert isinstance(m.DEFAULT_OPTIONS, dict)


@pytest.mark.parametrize("name", ADAPTERS)
def test_fixture_counts_and_invariants(name, tmp_path):
    root = BUILDERS[name](tmp_path / name)
    assert kinds(run(ADAPTERS[name], root)) == EXPECTED[name]


@pytest.mark.parametrize("name", ADAPTERS)
def test_wrapping_folder_accepted(name, tmp_path):
    plain = run(ADAPTERS[name], BUILDERS[name](tmp_path / "plain" / name))
    root = tmp_path / "wrapped" / name
    BUILDERS[name](root / "release-v1.0")
    assert ADAPTERS[name].detect(root)
    wrapped = run(ADAPTERS[name], root)
    assert sorted(k.split("/", 1)[1] for k in wrapped) == sorted(plain)
    assert kinds(wrapped) == kinds(plain)


@pytest.mark.parametrize("name", ADAPTERS)
def test_linked_corpus_and_linked_folders_inside_it_are_followed_once(name, tmp_path):
    plain = run(ADAPTERS[name], BUILDERS[name](tmp_path / "plain"))
    # The corpus lives elsewhere and is linked in; each of its folders is moved out and linked back
    # (as a corpus spread over disks is); a link back to the corpus root makes a cycle.
    real = BUILDERS[name](tmp_path / "store" / name)
    for i, child in enumerate(c for c in sorted(real.iterdir()) if c.is_dir()):
        moved = tmp_path / "disk2" / str(i)
        moved.parent.mkdir(exist_ok=True)
        child.rename(moved)
        child.symlink_to(moved, target_is_directory=True)
    (real / "zz-cycle").symlink_to(real, target_is_directory=True)
    linked = tmp_path / "raw" / name
    linked.parent.mkdir()
    linked.symlink_to(Path("..") / "store" / name, target_is_directory=True)
    assert ADAPTERS[name].detect(linked)
    items = run(ADAPTERS[name], linked)
    assert sorted(items) == sorted(plain) and kinds(items) == kinds(plain)


@pytest.mark.parametrize("name", ADAPTERS)
def test_detect_only_own_corpus(name, tmp_path):
    root = BUILDERS[name](tmp_path / name)
    assert {n for n, m in ADAPTERS.items() if m.detect(root)} == {name}


@pytest.mark.parametrize("name", ADAPTERS)
def test_detect_false_on_empty_or_missing(name, tmp_path):
    (tmp_path / "empty").mkdir()
    assert not ADAPTERS[name].detect(tmp_path / "empty")
    assert not ADAPTERS[name].detect(tmp_path / "missing")


@pytest.mark.parametrize("name", ADAPTERS)
def test_unknown_option_is_a_params_error(name, tmp_path):
    with pytest.raises(ParamsError, match=f"data.options.{name}.bogus"):
        ADAPTERS[name].prepare(tmp_path, {"bogus": 1})


# --- RAVDESS -----------------------------------------------------------------------------------

def test_ravdess_entries(tmp_path):
    items = run(ravdess, build_ravdess(tmp_path))
    e = items["Actor_01/03-01-05-01-01-01-01.wav"]
    assert (e.speaker, e.gender, e.text_id, e.utt_id, e.original_label) == \
        ("ravdess:01", "male", "01", "03-01-05-01-01-01-01", "angry")
    assert label(ravdess, e) == "angry"
    calm = items["Actor_02/03-01-02-02-01-01-02.wav"]
    assert (calm.speaker, calm.gender, calm.original_label) == ("ravdess:02", "female", "calm")
    assert label(ravdess, calm) is None
    assert label(ravdess, items["Actor_02/03-01-08-01-01-01-02.wav"]) == "surprise"
    assert items["Actor_01/03-01-01-01-02-02-01.wav"].text_id == "02"
    assert items["actor_03/03-01-04-01-01-01-03.WAV"].original_label == "sad"


def test_ravdess_rejected_and_excluded(tmp_path):
    items = run(ravdess, build_ravdess(tmp_path))
    reasons = {k: v.reason for k, v in items.items() if not isinstance(v, Entry)}
    assert "emotion code 09" in reasons["Actor_01/03-01-09-01-01-01-01.wav"]
    assert reasons["Actor_01/03-01-05-01-01-01.wav"] == \
        "name does not match MM-VV-EE-II-SS-RR-AA.wav"
    assert "Actor_01/" in reasons["Actor_01/03-01-05-01-01-01-02.wav"]
    assert "repetition 03" in reasons["Actor_01/03-01-05-01-01-03-01.wav"]
    assert "actor 25" in reasons["extra/03-01-05-01-01-01-25.wav"]
    assert isinstance(items["Actor_12/03-02-03-01-01-01-12.wav"], Excluded)
    assert "song" in reasons["Actor_12/03-02-03-01-01-01-12.wav"]
    dup = items["audio_speech_actors_01-24/Actor_01/03-01-05-01-01-01-01.wav"]
    assert isinstance(dup, Excluded) and "Actor_01/03-01-05-01-01-01-01.wav" in dup.reason


def test_ravdess_include_song(tmp_path):
    items = run(ravdess, build_ravdess(tmp_path), {"include_song": True})
    song = items["Actor_12/03-02-03-01-01-01-12.wav"]
    assert isinstance(song, Entry)
    assert (song.speaker, song.gender, label(ravdess, song)) == ("ravdess:12", "female", "happy")
    with pytest.raises(ParamsError, match="include_song"):
        ravdess.prepare(tmp_path, {"include_song": "yes"})


# --- CREMA-D -----------------------------------------------------------------------------------

def test_cremad_entries_and_gender(tmp_path):
    items = run(cremad, build_cremad(tmp_path))
    e = items["AudioWAV/1001_DFA_ANG_XX.wav"]
    assert (e.speaker, e.gender, e.text_id, e.original_label, e.extra["level"]) == \
        ("cremad:1001", "male", "DFA", "ang", "XX")
    assert items["AudioWAV/1002_IEO_HAP_HI.wav"].gender == "female"
    assert items["AudioWAV/1091_WSI_NEU_XX.wav"].gender is None  # not in the CSV
    got = {v.original_label.upper(): label(cremad, v)
           for v in items.values() if isinstance(v, Entry)}
    assert got == {"ANG": "angry", "HAP": "happy", "NEU": "neutral", "SAD": "sad",
                   "FEA": "fearful", "DIS": "disgust"}


def test_cremad_rejected(tmp_path):
    items = run(cremad, build_cremad(tmp_path))
    reason = {k: v.reason for k, v in items.items() if not isinstance(v, Entry)}
    assert "actor 1000" in reason["AudioWAV/1000_DFA_ANG_XX.wav"]
    assert "actor 1092" in reason["AudioWAV/1092_DFA_ANG_XX.wav"]
    assert "sentence code ABC" in reason["AudioWAV/1001_ABC_ANG_XX.wav"]
    assert "emotion code SUR" in reason["AudioWAV/1001_DFA_SUR_XX.wav"]
    assert "level ZZ" in reason["AudioWAV/1001_DFA_ANG_ZZ.wav"]
    assert "does not match" in reason["AudioWAV/1001_DFA_ANG.wav"]
    assert isinstance(items["AudioMP3/1001_DFA_ANG_XX.mp3"], Excluded)


def test_cremad_without_demographics_and_flat(tmp_path):
    touch(tmp_path, "1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav")
    assert cremad.detect(tmp_path)
    items = run(cremad, tmp_path)
    assert kinds(items) == (2, 0, 0)
    assert all(e.gender is None for e in items.values())


def test_cremad_demographics_beside_wrapped_audio(tmp_path):
    build_cremad(tmp_path / "CREMA-D-master")
    items = run(cremad, tmp_path)
    assert items["CREMA-D-master/AudioWAV/1001_DFA_ANG_XX.wav"].gender == "male"


# --- TESS --------------------------------------------------------------------------------------

def test_tess_entries(tmp_path):
    items = run(tess, build_tess(tmp_path))
    w = TESS_WRAP
    oa = items[f"{w}/OAF_neutral/OA_bite_neutral.wav"]
    assert (oa.speaker, oa.gender, oa.text_id, oa.utt_id, oa.original_label) == \
        ("tess:OAF", "female", "bite", "OA_bite_neutral", "neutral")
    assert items[f"{w}/OAF_Fear/OAF_back_fear.wav"].original_label == "fear"
    assert label(tess, items[f"{w}/OAF_Fear/OAF_back_fear.wav"]) == "fearful"
    ps = items[f"{w}/OAF_Pleasant_surprise/OAF_back_ps.wav"]
    assert (ps.original_label, label(tess, ps)) == ("pleasant_surprise", "surprise")
    yps = items[f"{w}/YAF_pleasant_surprised/YAF_dog_ps.wav"]
    assert (yps.speaker, yps.original_label, label(tess, yps)) == \
        ("tess:YAF", "pleasant_surprised", "surprise")
    flat = items[f"{w}/flat/YAF_chair_ps.wav"]
    assert (flat.speaker, flat.original_label, flat.text_id) == ("tess:YAF", "ps", "chair")
    assert label(tess, items[f"{w}/OAF_Sad/OAF_back_sad.wav"]) == "sad"


def test_tess_colliding_stems_get_folder_prefix(tmp_path):
    items = run(tess, build_tess(tmp_path))
    assert items[f"{TESS_WRAP}/OAF_happy/OAF_wire_happy.wav"].utt_id == "OAF_happy_OAF_wire_happy"
    assert items[f"{TESS_WRAP}/flat/OAF_wire_happy.wav"].utt_id == "flat_OAF_wire_happy"
    assert items[f"{TESS_WRAP}/OAF_angry/OAF_back_angry.wav"].utt_id == "OAF_back_angry"


def test_tess_rejected(tmp_path):
    items = run(tess, build_tess(tmp_path))
    reason = {k.split("/", 1)[1]: v.reason for k, v in items.items() if isinstance(v, Rejected)}
    assert "emotion sad in the name" in reason["OAF_angry/OAF_back_sad.wav"]
    assert "speaker OAF in the name" in reason["YAF_sad/OAF_door_sad.wav"]
    assert "does not match" in reason["OAF_happy/back.wav"]
    assert "not in a <speaker>_<emotion> folder" in reason["misc/XYZ_back_angry.wav"]


def test_tess_kaggle_double_copy_counts_once(tmp_path):
    touch(tmp_path,
          f"{TESS_WRAP}/{TESS_WRAP}/OAF_angry/OAF_back_angry.wav",
          f"{TESS_WRAP.lower()}/{TESS_WRAP.lower()}/OAF_angry/OAF_back_angry.wav")
    assert tess.detect(tmp_path)
    items = run(tess, tmp_path)
    assert kinds(items) == (1, 0, 1)


# --- SAVEE -------------------------------------------------------------------------------------

def test_savee_official_layout(tmp_path):
    items = run(savee, build_savee(tmp_path))
    a = items["AudioData/DC/a01.wav"]
    assert (a.speaker, a.gender, a.text_id, a.utt_id, label(savee, a)) == \
        ("savee:DC", "male", "a01", "DC_a01", "angry")
    sa = items["AudioData/DC/sa01.wav"]
    assert (sa.original_label, sa.text_id, label(savee, sa)) == ("sa", "sa01", "sad")
    assert label(savee, items["AudioData/DC/su15.wav"]) == "surprise"
    assert label(savee, items["AudioData/JE/n30.wav"]) == "neutral"
    assert items["AudioData/KL/f02.wav"].speaker == "savee:KL"
    reason = {k: v.reason for k, v in items.items() if isinstance(v, Rejected)}
    assert "sentence 16" in reason["AudioData/DC/a16.wav"]
    assert "sentence 31" in reason["AudioData/DC/n31.wav"]
    assert "does not match" in reason["AudioData/DC/x01.wav"]
    assert "does not match" in reason["AudioData/DC/s01.wav"]
    assert "not in a speaker folder" in reason["AudioData/other/a01.wav"]


def test_savee_flat_layout(tmp_path):
    touch(tmp_path, "ALL/DC_a01.wav", "ALL/JE_sa02.wav", "ALL/kl_SU03.wav", "ALL/XY_a01.wav",
          "ALL/DC_s01.wav")
    assert savee.detect(tmp_path)
    items = run(savee, tmp_path)
    assert kinds(items) == (3, 2, 0)
    je = items["ALL/JE_sa02.wav"]
    assert (je.speaker, je.utt_id, je.text_id, label(savee, je)) == \
        ("savee:JE", "JE_sa02", "sa02", "sad")
    kl = items["ALL/kl_SU03.wav"]
    assert (kl.speaker, kl.utt_id, label(savee, kl)) == ("savee:KL", "KL_su03", "surprise")
    assert "speaker XY" in items["ALL/XY_a01.wav"].reason


def test_savee_both_layouts_count_once(tmp_path):
    touch(tmp_path, "AudioData/DC/a01.wav", "DC_a01.wav")
    items = run(savee, tmp_path)
    assert kinds(items) == (1, 0, 1)


# --- JL ----------------------------------------------------------------------------------------

def test_jl_entries(tmp_path):
    items = run(jl, build_jl(tmp_path))
    e = items[f"{JL_RAW}/female1_angry_10a_1.wav"]
    assert (e.speaker, e.gender, e.text_id, e.utt_id, label(jl, e)) == \
        ("jl:female1", "female", "10a", "female1_angry_10a_1", "angry")
    assert e.extra["text"] == "Tony, the waiter"
    ex = items[f"{JL_RAW}/male2_excited_1b_2.wav"]
    assert (ex.speaker, ex.gender, ex.original_label, label(jl, ex)) == \
        ("jl:male2", "male", "excited", None)
    assert label(jl, items[f"{JL_RAW}/male1_anxious_3a_1.wav"]) is None
    assert "text" not in items[f"{JL_RAW}/female2_sad_5b_1.wav"].extra


def test_jl_rejected_and_duplicates_excluded(tmp_path):
    items = run(jl, build_jl(tmp_path))
    assert "emotion bored" in items[f"{JL_RAW}/male1_bored_1a_1.wav"].reason
    assert "speaker female3" in items[f"{JL_RAW}/female3_angry_1a_1.wav"].reason
    assert "does not match" in items[f"{JL_RAW}/female1_angry.wav"].reason
    for copy in ("raw jl corpus (unchecked and unannotated)/JL(wav+txt)/female1_angry_10a_1.wav",
                 "Select1_female1/female1_angry_10a_1.wav"):
        assert isinstance(items[copy], Excluded)
        assert "outside the raw folder" in items[copy].reason


def test_jl_without_raw_folder(tmp_path):
    touch(tmp_path, "JL_corpus/female1_happy_2a_1.wav", "JL_corpus/male1_happy_2a_1.wav")
    assert jl.detect(tmp_path)
    items = run(jl, tmp_path)
    assert kinds(items) == (2, 0, 0)
    assert items["JL_corpus/male1_happy_2a_1.wav"].gender == "male"


# --- ESD ---------------------------------------------------------------------------------------

def test_esd_entries(tmp_path):
    items = run(esd, build_esd(tmp_path))
    w = ESD_WRAP
    e = items[f"{w}/0011/Angry/0011_000351.wav"]
    assert (e.speaker, e.gender, e.text_id, e.utt_id, label(esd, e)) == \
        ("esd:0011", None, "000351", "0011_000351", "angry")
    assert e.extra["text"] == "The nine the eggs."
    assert label(esd, items[f"{w}/0011/Happy/train/0011_000701.wav"]) == "happy"
    assert label(esd, items[f"{w}/0011/Neutral/evaluation/0011_000001.wav"]) == "neutral"
    assert label(esd, items[f"{w}/0012/Sad/test/0012_001051.wav"]) == "sad"
    assert label(esd, items[f"{w}/0020/Surprise/0020_001401.wav"]) == "surprise"


def test_esd_rejected_and_mandarin_excluded(tmp_path):
    items = run(esd, build_esd(tmp_path))
    w = ESD_WRAP
    assert "mandarin" in items[f"{w}/0001/Angry/0001_000351.wav"].reason
    assert isinstance(items[f"{w}/0010/Happy/train/0010_000701.wav"], Excluded)
    assert "does not match" in items[f"{w}/0011/Angry/0011_351.wav"].reason
    assert "speaker 0012 in the name" in items[f"{w}/0011/Angry/0012_000352.wav"].reason
    assert "not in an emotion folder" in items[f"{w}/0011/0011_000353.wav"].reason
    assert "not in an emotion folder" in items[f"{w}/0011/Calm/0011_000354.wav"].reason
    assert "speaker 0021" in items[f"{w}/0021/Angry/0021_000351.wav"].reason


def test_esd_languages_option(tmp_path):
    root = build_esd(tmp_path)
    both = run(esd, root, {"languages": ["english", "mandarin"]})
    assert kinds(both) == (7, 5, 0)
    assert both[f"{ESD_WRAP}/0001/Angry/0001_000351.wav"].speaker == "esd:0001"
    mandarin = run(esd, root, {"languages": ["mandarin"]})
    assert kinds(mandarin) == (2, 5, 5)
    for bad in (["french"], []):
        with pytest.raises(ParamsError, match="languages"):
            esd.prepare(root, {"languages": bad})


# --- EmoDB -------------------------------------------------------------------------------------

def test_emodb_entries_and_rejected(tmp_path):
    items = run(emodb, build_emodb(tmp_path))
    e = items["wav/03a01Fa.wav"]
    assert (e.speaker, e.gender, e.text_id, e.utt_id, e.original_label, label(emodb, e)) == \
        ("emodb:03", "male", "a01", "03a01Fa", "f", "happy")
    w = items["wav/08b10Wb.wav"]
    assert (w.speaker, w.gender, label(emodb, w)) == ("emodb:08", "female", "angry")
    assert (items["wav/16a05Lc.wav"].original_label, label(emodb, items["wav/16a05Lc.wav"])) == \
        ("l", None)
    got = {k[9]: label(emodb, v) for k, v in items.items() if isinstance(v, Entry)}
    assert got == {"F": "happy", "W": "angry", "L": None, "T": "sad", "E": "disgust",
                   "A": "fearful", "N": "neutral"}
    reason = {k: v.reason for k, v in items.items() if isinstance(v, Rejected)}
    assert "speaker 04" in reason["wav/04a01Fa.wav"]
    assert "does not match" in reason["wav/03c01Fa.wav"]
    assert "text code a11" in reason["wav/03a11Fa.wav"]
    assert "emotion letter X" in reason["wav/03a01Xa.wav"]
    assert "does not match" in reason["wav/03a01F.wav"]
