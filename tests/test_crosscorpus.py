"""Cross-corpus evaluation (pipeline/crosscorpus.py): which cells are made over the corpora present, that a cell
trains only on its training corpora's rows of the classes both sides share, that the baseline is scored on the
same rows as the model, and that one corpus gives a clear note, not an error. Tiny synthetic shards."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline import crosscorpus, crossval
from tests.test_crossval_invariants import params, write_workspace

CORPUS_OF = {"s1": "alpha", "s2": "alpha", "s3": "beta", "s4": "gamma"}


def test_cells_leave_each_corpus_out_then_cross_each_pair_on_shared_classes():
    found, notes = crosscorpus.cells({"alpha": {"angry", "happy", "sad"}, "beta": {"angry", "happy", "sad", "fear"},
                                      "gamma": {"angry", "happy"}})
    loco = [c for c in found if c.design == "leave one corpus out"]
    assert [(c.train, c.test) for c in loco] == [(("beta", "gamma"), "alpha"), (("alpha", "gamma"), "beta"),
                                                 (("alpha", "beta"), "gamma")]
    assert len(found) == 3 + 6 and not notes
    for c in found:
        assert c.test not in c.train
    by = {(c.train, c.test): c.classes for c in found}
    assert by[("alpha",), "gamma"] == ("angry", "happy")  # gamma has no sad
    assert by[("beta",), "alpha"] == ("angry", "happy", "sad")  # alpha has no fear
    assert by[("alpha", "gamma"), "beta"] == ("angry", "happy", "sad")  # the union of the training corpora's
    # two corpora: the leave-one-out cells are the pairs, not made twice
    two, _ = crosscorpus.cells({"emodb": {"angry", "sad"}, "ravdess": {"angry", "sad", "surprise"}})
    assert [(c.train, c.test) for c in two] == [(("ravdess",), "emodb"), (("emodb",), "ravdess")]
    assert crosscorpus.cells({"demo": {"angry", "sad"}}) == ([], [])
    few, notes = crosscorpus.cells({"a": {"angry", "sad"}, "b": {"angry", "fear"}})
    assert few == [] and len(notes) == 2 and "1 shared class" in notes[0]


@pytest.fixture
def corpora(tmp_path, monkeypatch):
    from tests.conftest import REPO

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    write_workspace(tmp_path, corpus_of=CORPUS_OF, without=(("gamma", "sad"),))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_cell_trains_without_its_test_corpus_and_the_baseline_scores_the_same_rows(corpora, monkeypatch):
    trained, baseline_rows = [], []
    real_train, real_baseline = crossval._train, crossval.baseline_scores

    def spy_train(cfg, kinds, data, parts, classes, settings):
        meta = data.meta[parts["train"]]
        trained.append({"corpora": set(meta["corpus"]), "labels": set(data.labels[parts["train"]]),
                        "classes": list(classes), "val": int(parts["val"].sum())})
        return real_train(cfg, kinds, data, parts, classes, settings)

    def spy_baseline(x_train, y_train, x_test, spk_train, spk_test, per_speaker):
        baseline_rows.append({"train_speakers": set(spk_train), "test_speakers": list(spk_test),
                              "labels": set(y_train)})
        return real_baseline(x_train, y_train, x_test, spk_train, spk_test, per_speaker)

    monkeypatch.setattr(crossval, "_train", spy_train)
    monkeypatch.setattr(crossval, "baseline_scores", spy_baseline)
    p = params("functionals")
    p["crosscorpus"] = {"seeds": [1], "baseline": True}
    crosscorpus.run(p, out=corpora / "cc")
    cells = json.loads((corpora / "cc" / "crosscorpus.json").read_text())["cells"]
    assert len(cells) == 9 == len(trained) == len(baseline_rows) // 2
    for cell, seen, base in zip(cells, trained, baseline_rows[::2]):
        assert set(cell) >= {"train", "test", "classes", "files", "uar_cold", "uar_transductive", "baseline_uar_cold"}
        assert seen["corpora"] == set(cell["train"]) and cell["test"] not in seen["corpora"]
        assert seen["labels"] <= set(cell["classes"]) and seen["classes"] == cell["classes"] and seen["val"] == 0
        # the baseline: trained on the same training corpora, scored on exactly the cell's test rows
        assert {s.split(":")[0] for s in base["train_speakers"]} == set(cell["train"])
        assert len(base["test_speakers"]) == cell["files"]
        assert {s.split(":")[0] for s in base["test_speakers"]} == {cell["test"]}
        for key in ("uar_cold", "uar_transductive", "baseline_uar_cold"):
            assert 0.0 <= cell[key] <= 1.0
    gamma = [c for c in cells if c["test"] == "gamma"]
    assert gamma and all(c["classes"] == ["angry", "happy"] and c["files"] == 8 for c in gamma)  # s4 without sad
    frame = pd.read_csv(corpora / "cc" / "cells.csv")
    assert len(frame) == 9 and (corpora / "cc" / "heatmap.png").stat().st_size > 0
    assert "| alpha | gamma |" in (corpora / "cc" / "report.md").read_text()


def test_one_corpus_says_there_is_nothing_to_cross(tmp_path, monkeypatch):
    from tests.conftest import REPO

    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    write_workspace(tmp_path)  # every speaker the demo's
    monkeypatch.chdir(tmp_path)
    assert crosscorpus.run(params("functionals"), out=tmp_path / "cc") == {}
    out = json.loads((tmp_path / "cc" / "crosscorpus.json").read_text())
    assert out["cells"] == [] and "needs two corpora" in out["note"] and "demo" in out["note"]
    assert (tmp_path / "cc" / "heatmap.png").exists()
