"""Release check: a copy of a corpus compared with reference checksums of its official release."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.corpora import ADAPTER_NAMES, release
from pipeline.corpora.base import walk_audio
from pipeline.corpora.release import check_release, load_reference

# EmoDB names: three kept utterances and one boredom file (dropped by label in ingest).
OFFICIAL = ("wav/03a01Fa.wav", "wav/03a01Wa.wav", "wav/08b02Nc.wav", "wav/08a04Lb.wav")


def write_wav(path: Path, seed: int, sr: int = 16000, subtype: str = "PCM_16") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = np.sin(np.linspace(0, 200 + 40 * seed, sr // 2)) * 0.5
    sf.write(path, tone + np.random.default_rng(seed).normal(0, 0.05, tone.shape), sr, subtype=subtype)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def release_tree(tmp_path):
    """(official copy of the fixture corpus, reference dir with its emodb.tsv)."""
    corpus = tmp_path / "official"
    for seed, rel in enumerate(OFFICIAL):
        write_wav(corpus / rel, seed)
    refs = tmp_path / "checksums"
    refs.mkdir()
    lines = ["# fixture release: 4 files", "path\tsha256\tbytes"]
    lines += [f"{rel}\t{sha256(corpus / rel)}\t{(corpus / rel).stat().st_size}" for rel in OFFICIAL]
    lines.append("Info.txt\t" + "0" * 64 + "\t10")  # non-audio entries are not checked (ingest sees audio only)
    (refs / "emodb.tsv").write_text("\n".join(lines) + "\n")
    return corpus, refs


def copy_of(corpus: Path, dest: Path) -> Path:
    shutil.copytree(corpus, dest)
    return dest


def check(root: Path, refs: Path):
    found = [(p, sha256(p)) for p in walk_audio(root)]
    result = check_release("emodb", root, found, refs)
    # Every official file and every found file is in exactly one category.
    assert result.official == (len(result.matching) + len(result.differing) + len(result.moved)
                               + len(result.missing))
    assert len(found) == (len(result.matching) + len(result.differing) + len(result.moved) + len(result.copies)
                          + len(result.extra))
    return result


def test_exact_copy(release_tree):
    corpus, refs = release_tree
    result = check(corpus, refs)
    assert result.verdict == "official release, 4/4 files" and result.status == "official"
    assert sorted(result.matching) == sorted(OFFICIAL) and result.anchor == ""
    summary = result.summary()
    assert summary["matching"] == 4 and summary["official"] == 4 and summary["examples"] == {}
    assert summary["source"] == "fixture release: 4 files"


def test_re_encoded_file_differs(release_tree, tmp_path):
    corpus, refs = release_tree
    copy = copy_of(corpus, tmp_path / "copy")
    data, sr = sf.read(copy / OFFICIAL[1])
    sf.write(copy / OFFICIAL[1], data, sr, subtype="PCM_24")  # same audio, other bytes
    result = check(copy, refs)
    assert result.differing == [OFFICIAL[1]] and len(result.matching) == 3
    assert result.verdict == "modified copy: 1 of 4 files differ from the official release"
    assert result.summary()["examples"] == {"differing": [OFFICIAL[1]]}


def test_whole_copy_resampled(release_tree, tmp_path):
    corpus, refs = release_tree
    copy = tmp_path / "copy"
    for seed, rel in enumerate(OFFICIAL):
        write_wav(copy / rel, seed, sr=22050)
    result = check(copy, refs)
    assert result.verdict == "modified copy: 4 of 4 files differ from the official release"
    assert result.status == "modified"


def test_missing_file(release_tree, tmp_path):
    corpus, refs = release_tree
    copy = copy_of(corpus, tmp_path / "copy")
    (copy / OFFICIAL[2]).unlink()
    result = check(copy, refs)
    assert result.missing == [OFFICIAL[2]] and result.status == "partial"
    assert result.verdict == "partial official release: 3/4 files; 1 missing"


def test_extra_file(release_tree, tmp_path):
    corpus, refs = release_tree
    copy = copy_of(corpus, tmp_path / "copy")
    write_wav(copy / "wav" / "16b10Ab.wav", seed=99)
    result = check(copy, refs)
    assert result.extra == ["wav/16b10Ab.wav"]
    assert result.verdict == "official release, 4/4 files; 1 file not in the release"


def test_renamed_wrapper_folders(release_tree, tmp_path):
    """The corpus two folders down, under names of the uploader's choosing: paths still match."""
    corpus, refs = release_tree
    root = tmp_path / "my emodb"
    copy_of(corpus, root / "EmoDB (Kaggle)" / "berlin")
    result = check(root, refs)
    assert result.verdict == "official release, 4/4 files"
    assert result.anchor == "EmoDB (Kaggle)/berlin"
    assert result.matching[0].startswith("EmoDB (Kaggle)/berlin/wav/")


def test_file_recognised_by_hash_at_another_path(release_tree, tmp_path):
    corpus, refs = release_tree
    copy = copy_of(corpus, tmp_path / "copy")
    (copy / "flat").mkdir()
    (copy / OFFICIAL[0]).rename(copy / "flat" / "angry_01.wav")
    result = check(copy, refs)
    assert result.moved == [("flat/angry_01.wav", OFFICIAL[0])] and not result.missing
    assert result.verdict == "official release, 4/4 files; 1 at other paths"
    assert result.summary()["examples"] == {"moved": [f"flat/angry_01.wav -> {OFFICIAL[0]}"]}


def test_case_of_names_and_second_copy(release_tree, tmp_path):
    """Names matched case-insensitively (as the adapters read them); a nested second copy of the whole set
    (a common re-upload) is counted as copies, the top-level one as the release."""
    corpus, refs = release_tree
    copy = tmp_path / "copy"
    for rel in OFFICIAL:
        (copy / rel.upper()).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus / rel, copy / rel.upper())
    copy_of(corpus, copy / "emodb" / "emodb")
    result = check(copy, refs)
    assert result.anchor == "" and len(result.matching) == 4 and len(result.copies) == 4
    assert result.verdict == "official release, 4/4 files; 4 extra copies of official files"


def test_nothing_recognised(release_tree, tmp_path):
    corpus, refs = release_tree
    copy = tmp_path / "copy"
    write_wav(copy / "a.wav", seed=50)
    result = check(copy, refs)
    assert result.status == "unofficial" and len(result.missing) == 4
    assert result.verdict == ("not the official release: none of its 4 files found (by path or content); "
                              "1 file not in the release")


def test_no_reference(release_tree):
    corpus, refs = release_tree
    result = check_release("esd", corpus, [(p, sha256(p)) for p in walk_audio(corpus)], refs)
    assert result.verdict == "no reference checksums"
    assert result.summary() == {"verdict": "no reference checksums", "status": "unknown"}


def test_shipped_reference_lists():
    """Installed with the package: one list per corpus with an official release; none for esd and demo."""
    sizes = {"cremad": 7442, "ravdess": 1440, "tess": 2800, "emodb": 535, "jl": 4843, "savee": 480}
    for name in ADAPTER_NAMES:
        reference = load_reference(name)
        assert (reference is None) == (name not in sizes), name
        if reference:
            assert len(reference.files) == sizes[name] and reference.source
            assert all(len(h) == 64 for h in reference.files.values())


def test_ingest_reports_the_verdict_and_counts_dropped_files(release_tree, tmp_path, monkeypatch, capsys):
    """Ingest hashes every file found, kept or not: the boredom file (dropped by label) and a file
    quarantined for being too short are present, not missing."""
    from pipeline import ingest

    corpus, refs = release_tree
    raw = tmp_path / "raw"
    copy = copy_of(corpus, raw / "emodb")
    sf.write(copy / OFFICIAL[2], np.full(160, 0.5), 16000)  # 10 ms: quarantined as too short, and re-encoded
    monkeypatch.setattr(release, "CHECKSUMS_DIR", refs)
    monkeypatch.chdir(tmp_path)
    params = {"data": {"raw_dir": str(raw), "corpora": ["emodb"], "workers": 1}, "demo": {"out_dir": "demo"}}
    report = ingest.run(params)
    emodb = report["corpora"]["emodb"]
    assert (emodb["kept"], emodb["dropped"], emodb["quarantined"]) == (2, 1, 1)
    verdict = "modified copy: 1 of 4 files differ from the official release"
    assert emodb["release"]["verdict"] == verdict
    assert (emodb["release"]["matching"], emodb["release"]["differing"], emodb["release"]["missing"]) == (3, 1, 0)
    assert json.loads((tmp_path / "metrics" / "ingest.json").read_text())["corpora"]["emodb"]["release"] \
        == emodb["release"]
    assert f"release check, emodb: {verdict}" in capsys.readouterr().out


def test_report_shows_the_verdict_near_the_top():
    from pipeline.report import _release_lines

    ingest = {"corpora": {"emodb": {"release": {"verdict": "modified copy: 535 of 535 files differ from the "
                                                           "official release"}},
                          "demo": {"release": {"verdict": "no reference checksums"}}}}
    assert _release_lines(ingest)[2:4] == ["- emodb: modified copy: 535 of 535 files differ from the official "
                                           "release", "- demo: no reference checksums"]
    assert _release_lines({}) == []
