"""What a DVC user reads: the columns `dvc exp show` leads with, and the offline `dvc plots show` page.

Fast: a temporary git repo with this repo's dvc.yaml, params.yaml, .dvc/config and page template, and small
result files written the way the stages write them (train's DVCLive callback, evaluate's headline, crossval's
summary).
"""
import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from pipeline.evaluate import headline_metrics
from pipeline.train import _live_callback

REPO = Path(__file__).resolve().parents[1]
# `dvc exp show` leads with the cross-validated headline (choose by cv.val_uar_mean: validation speakers),
# then the single split's test result
CV = "metrics/cv.json"

def _vendored() -> tuple:
    spec = importlib.util.spec_from_file_location("plots_template_build", REPO / "plots_template" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PACKAGES


def _dvc(root: Path, *args: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def write_results(root: Path, epochs: int = 3) -> None:
    """Results shaped as the pipeline writes them: DVCLive through train's callback, evaluate's headline, and
    the predictions the confusion-matrix plot reads."""
    from dvclive import Live

    live = Live(dir=str(root / "metrics/train"), save_dvc_exp=False, dvcyaml=False)
    callback = _live_callback(SimpleNamespace(callbacks=SimpleNamespace(Callback=object)), live)
    for epoch in range(epochs):
        callback.on_epoch_end(epoch, {"accuracy": 0.5 + 0.1 * epoch, "loss": 1.5 - 0.3 * epoch,
                                      "val_accuracy": 0.4 + 0.1 * epoch, "val_loss": 1.7 - 0.3 * epoch,
                                      "learning_rate": 1e-3 / (1 + epoch)})
    live.summary.update({"train_seconds": 12.5, "epochs": epochs})
    live.end()
    labels = ["angry", "happy", "sad", "neutral"]
    rows = [(a, p) for i, a in enumerate(labels) for p in (a, a, labels[(i + 1) % len(labels)])]  # 2 of 3 right
    result = {"accuracy": 0.75, "uar": 0.75, "macro_f1": 0.74, "weighted_f1": 0.74, "loss": 0.6, "support": 12}
    (root / "metrics/metrics.json").write_text(json.dumps({"test": headline_metrics(result, "cnn")}))
    summary = {f"{m}_{s}": 0.7 for m in ("accuracy", "uar", "macro_f1") for s in ("mean", "std", "pooled")}
    (root / CV).write_text(json.dumps({"cv": {"folds": 5, "seeds": 1, "runs": 5, **summary, "val_uar_mean": 0.7,
                                              "files": 12}, "baseline": summary, "baseline_spknorm": summary}))
    (root / "metrics/per_class.json").write_text(json.dumps(
        {"per_class": {lab: {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 3} for lab in labels}}))
    (root / "metrics/predictions.csv").write_text(
        "name,actual,predicted\n" + "".join(f"f{i}.wav,{a},{p}\n" for i, (a, p) in enumerate(rows)))


def make_ui_repo(root: Path) -> Path:
    """A git + DVC repo with this project's configuration and small results, baseline committed."""
    (root / ".dvc").mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvc/config", ".dvc/.gitignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "plots_template", root / "plots_template")
    (root / "metrics").mkdir()
    write_results(root)
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "t"], ["git", "add", "-A"], ["git", "commit", "-qm", "baseline"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return root


@pytest.fixture(scope="module")
def ui_repo(tmp_path_factory):
    return make_ui_repo(tmp_path_factory.mktemp("ui") / "repo")


def test_dvc_yaml_declares_metrics_cv_first_then_test_then_training():
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    # A stage-level `metrics:` would be listed before every top-level one, in stage order (train first).
    assert [name for name, stage in dvc_yaml["stages"].items() if "metrics" in stage] == []
    assert dvc_yaml["metrics"][:3] == [CV, "metrics/metrics.json", "metrics/train/metrics.json"]


def test_every_stage_run_can_be_shared_through_the_run_cache():
    """DVC saves no run-cache for a stage with a `cache: false` output that is neither a metric nor a plot
    (treeverse/dvc#8738), and pushes no `cache: false` output at all, so a colleague could not restore such a
    run from the team's remote: every output is DVC-cached but for a stage that always runs."""
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        declared = [o for kind in ("outs", "metrics", "plots") for o in stage.get(kind, [])]
        uncached = [next(iter(o)) for o in declared
                    if isinstance(o, dict) and next(iter(o.values())).get("cache") is False]
        assert uncached == [] or stage.get("always_changed"), (name, uncached)


def test_exp_show_leads_with_cross_validation_then_test_and_names_need_no_file_prefix(ui_repo):
    header = next(csv.reader(io.StringIO(_dvc(ui_repo, "exp", "show", "--csv"))))
    metrics = header[header.index("parent") + 1:]
    cv = [c for c in metrics if c.startswith(("cv.", "baseline.", "baseline_spknorm."))]
    assert metrics[:len(cv)] == cv and "cv.val_uar_mean" in cv and "cv.uar_pooled" in cv, header
    assert metrics[len(cv):len(cv) + 3] == ["test.accuracy", "test.uar", "test.macro_f1"], header
    assert metrics.index("test.uar") < metrics.index("train.accuracy") < metrics.index("per_class.angry.f1")
    assert {"val.accuracy", "learning_rate", "model", "train.learning_rate"} <= set(header)  # metric, param
    assert [c for c in header if ":" in c] == []  # DVC prefixes a name only when two files share it


def test_plots_page_carries_vega_inline_and_loads_nothing_from_the_network(ui_repo):
    _dvc(ui_repo, "plots", "show", "-o", "dvc_plots")
    page = (ui_repo / "dvc_plots" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*\bsrc=", page, flags=re.I) == []
    assert re.findall(r"<link[^>]*\bhref=", page, flags=re.I) == []
    readme = (REPO / "plots_template" / "README.md").read_text()
    for name, version in _vendored():
        assert f"/*! {name}@{version}, BSD-3-Clause */" in page
        assert f"| {name} | {version} |" in readme
    assert "cdn.jsdelivr" not in page
    # one vegaEmbed call per declared plot: Loss, Accuracy, Learning rate, the confusion matrix
    assert len(re.findall(r"vegaEmbed\('#", page)) == 4
