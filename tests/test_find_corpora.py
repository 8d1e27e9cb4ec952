"""Which corpora ingest reads: every folder under data.raw_dir recognised by its layout, whatever its name;
the demo corpus only when raw_dir holds nothing; the demo stage skips its work when real corpora are there.

Fixture trees come from test_corpora (names and layout only: files hold a few bytes, not audio).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tests.test_corpora import BUILDERS, touch

from pipeline.demo_corpus import SKIPPED_FILE, VOICES, skip, skip_reason
from pipeline.errors import UserError
from pipeline.ingest import IngestConfig, find_corpora
from pipeline.files import scan
from pipeline.inventory import inventory

# As the releases unpack: a new user should not have to rename anything.
RELEASE_NAMES = {"cremad": "CREMA-D", "tess": "TESS Toronto emotional speech set data",
                 "ravdess": "Audio_Speech_Actors_01-24", "emodb": "EmoDB", "savee": "SAVEE",
                 "jl": "JL corpus", "esd": "Emotion Speech Dataset"}


def config(tmp_path: Path, **data) -> IngestConfig:
    demo = tmp_path / "demo"
    touch(demo, "v1/v1_angry_01.wav", "v1/v1_sad_01.wav")
    (demo / "sentences.txt").write_text("01\tHello.\n")
    return IngestConfig.from_params({"data": {"raw_dir": str(tmp_path / "raw"), **data},
                                     "demo": {"out_dir": str(demo)}})


def test_corpora_are_recognised_by_layout_whatever_the_folder_is_called(tmp_path):
    raw = tmp_path / "raw"
    for name, folder in RELEASE_NAMES.items():
        BUILDERS[name](raw / folder)
    touch(raw, ".gitkeep", "README.md", ".cache/x.wav", "__MACOSX/._x.wav")  # never corpora
    roots, used_demo = find_corpora(config(tmp_path))
    assert not used_demo
    assert {n: p.name for n, p in roots.items()} == RELEASE_NAMES


def test_a_folder_no_adapter_recognises_is_an_error_naming_it(tmp_path):
    BUILDERS["emodb"](tmp_path / "raw" / "emodb")
    touch(tmp_path / "raw", "my recordings/take1.wav")
    with pytest.raises(UserError, match=r"my recordings is not a corpus.*\n  ravdess: RAVDESS.*Actor_01"):
        find_corpora(config(tmp_path))
    touch(tmp_path / "raw2", "ravdess/notes.txt")  # named like a corpus, not laid out like it
    with pytest.raises(UserError, match=r"named like ravdess, but not laid out like it"):
        find_corpora(config(tmp_path, raw_dir=str(tmp_path / "raw2")))


def test_two_folders_of_one_corpus_or_one_folder_of_two_are_errors(tmp_path):
    raw = tmp_path / "raw"
    BUILDERS["ravdess"](raw / "ravdess")
    BUILDERS["ravdess"](raw / "Audio_Speech_Actors_01-24")
    with pytest.raises(UserError, match=r"Audio_Speech_Actors_01-24 and .*ravdess both look like ravdess"):
        find_corpora(config(tmp_path))
    mixed = tmp_path / "mixed"
    BUILDERS["ravdess"](mixed / "corpora" / "a")
    BUILDERS["emodb"](mixed / "corpora" / "b")
    with pytest.raises(UserError, match=r"corpora looks like several corpora \(ravdess, emodb\)"):
        find_corpora(config(tmp_path, raw_dir=str(mixed)))


@pytest.mark.parametrize("entries", [[], [".gitkeep"], [".gitkeep", "README.md"], ["empty/"]])
def test_the_demo_is_used_only_when_raw_dir_holds_nothing(tmp_path, entries):
    raw = tmp_path / "raw"
    raw.mkdir()
    for e in entries:
        (raw / e).mkdir() if e.endswith("/") else (raw / e).write_text("x")
    cfg = config(tmp_path)
    assert find_corpora(cfg) == ({"demo": cfg.demo_dir}, True)
    assert scan(raw).holds_nothing and skip_reason({"data": {"raw_dir": str(raw)}}) is None


def test_a_missing_raw_dir_is_an_error_not_the_demo(tmp_path):
    # e.g. a queued `dvc exp run`, whose copy of the repository has no git-ignored data/raw
    with pytest.raises(UserError, match=r"data.raw_dir .*raw is not a folder.*-C "):
        find_corpora(config(tmp_path))
    cfg = config(tmp_path, corpora=["demo"])  # named corpora need no raw_dir (bench_stages runs so)
    assert find_corpora(cfg) == ({"demo": cfg.demo_dir}, True)


@pytest.mark.parametrize("entry, message", [
    ("ravdess.zip", r"holds archives \(ravdess.zip\) but no unpacked corpus"),
    ("03a01Fa.wav", r"audio files directly in .*03a01Fa.wav.*folder of its own"),
    ("link", r"link is a link to .*nowhere, which does not exist"),
])
def test_raw_dir_holding_something_unusable_is_an_error_not_the_demo(tmp_path, entry, message):
    raw = tmp_path / "raw"
    raw.mkdir()
    if entry == "link":
        os.symlink(tmp_path / "nowhere", raw / "link")
    else:
        (raw / entry).write_text("x")
    with pytest.raises(UserError, match=message):
        find_corpora(config(tmp_path))
    assert skip_reason({"data": {"raw_dir": str(raw)}})  # and the demo stage does not synthesise either


def test_data_corpora_restricts_and_names_what_is_missing(tmp_path):
    raw = tmp_path / "raw"
    BUILDERS["ravdess"](raw / "RAVDESS")
    BUILDERS["emodb"](raw / "berlin")
    roots, used_demo = find_corpora(config(tmp_path, corpora=["emodb"]))
    assert {n: p.name for n, p in roots.items()} == {"emodb": "berlin"} and not used_demo
    with pytest.raises(UserError, match=r"data.corpora names 'tess' but no folder .* looks like it \(TESS"):
        find_corpora(config(tmp_path, corpora=["tess"]))
    roots, used_demo = find_corpora(config(tmp_path, corpora=["demo"]))
    assert list(roots) == ["demo"] and used_demo
    assert skip_reason({"data": {"raw_dir": str(raw), "corpora": ["demo"]}}) is None
    assert "data.corpora names emodb" in skip_reason({"data": {"raw_dir": str(raw), "corpora": ["emodb"]}})


def test_a_linked_corpus_folder_is_found_and_listed(tmp_path):
    BUILDERS["emodb"](tmp_path / "shared" / "emodb")
    raw = tmp_path / "raw"
    raw.mkdir()
    os.symlink("../shared/emodb", raw / "emodb")  # relative, as README and issue 11 link it
    roots, _ = find_corpora(config(tmp_path))
    assert roots == {"emodb": raw / "emodb"}
    listing = inventory(raw)
    assert listing["entries"][0]["link"] == "../shared/emodb" and listing["entries"][0]["files"] == 13
    before = listing["entries"][0]["digest"]
    touch(tmp_path / "shared" / "emodb", "wav/14a01Fa.wav")  # a change behind the link changes the listing
    assert inventory(raw)["entries"][0]["digest"] != before


def test_demo_stage_skips_with_a_note_when_corpora_are_present(tmp_path):
    raw = tmp_path / "raw"
    BUILDERS["emodb"](raw / "EmoDB")
    reason = skip_reason({"data": {"raw_dir": str(raw)}})
    assert reason and "EmoDB" in reason
    out = tmp_path / "demo"
    voice = VOICES[0].voice_id
    touch(out, f"{voice}/{voice}_angry_01.wav", "sentences.txt", "mine.txt")  # an earlier synthesis + a user's file
    skip(out, reason)
    assert sorted(p.name for p in out.iterdir()) == sorted([SKIPPED_FILE, "mine.txt"])
    assert "EmoDB" in (out / SKIPPED_FILE).read_text()
    # raw_dir emptied again without re-running the demo stage: ingest says so instead of reading nothing
    shutil.rmtree(raw / "EmoDB")
    cfg = IngestConfig.from_params({"data": {"raw_dir": str(raw)}, "demo": {"out_dir": str(out)}})
    with pytest.raises(UserError, match=r"no demo corpus in .*demo: run `dvc repro`"):
        find_corpora(cfg)
