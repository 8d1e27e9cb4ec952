"""The house: no import circle between modules (params.py used to import every stage for its checks,
an 11-file circle), utilities do not import their users, the shard schema is its own module (dataset
imported the render stage for it), and the CLI lives in pipeline.cli, not in __main__."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from pipeline.cli import COMMANDS, PARAMS_CHECKS
from tests.test_dvc_stages import code_run_by, imported_modules

ROOT = Path(__file__).resolve().parents[1]
UTILITIES = ("pipeline.params", "pipeline.errors", "pipeline.io", "pipeline.parallel", "pipeline.shards",
             "pipeline.backend", "pipeline.metrics", "pipeline.seeding", "pipeline.files", "pipeline.paths")
STAGES = {module for module, _ in COMMANDS.values()}


def all_modules() -> list[str]:
    names = []
    for path in (ROOT / "pipeline").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = itertools.count()

    def visit(v):
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_between_modules():
    graph = {m: imported_modules(m) - {m} for m in all_modules()}
    # a package that loads its own modules by name (the zoo registry) and is imported by them is one unit
    across = [c for c in circles(graph) if len({m.split(".")[1] for m in c}) > 1]
    assert not across, f"import circles: {across}"


def test_utilities_do_not_import_their_users():
    for utility in UTILITIES:
        if not (ROOT / (utility.replace(".", "/") + ".py")).exists():
            continue
        users = code_run_by(utility) & STAGES
        assert not users, f"{utility} imports the stages {sorted(users)}"
    assert "pipeline.render" not in code_run_by("pipeline.dataset")  # the shard schema is pipeline.shards
    assert "pipeline.shards" in code_run_by("pipeline.dataset") & code_run_by("pipeline.render")
    # the file walker is library code (pipeline.files), not the inventory stage the adapters used to import
    for module in ("pipeline.corpora", "pipeline.corpora.base", "pipeline.corpora.jl", "pipeline.ingest",
                   "pipeline.demo_corpus"):
        assert "pipeline.files" in code_run_by(module) and "pipeline.inventory" not in code_run_by(module), module


def test_importing_params_imports_no_stage():
    code = "import sys, pipeline.params; print(' '.join(m for m in sys.modules if m.startswith('pipeline')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout.split()
    assert set(out) <= {"pipeline", "pipeline.params", "pipeline.errors"}, out


def test_the_cli_checks_every_section_so_a_bad_value_fails_any_stage(tmp_path):
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["patience"] = 0  # train's key, caught by the split stage before any work
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, "-m", "pipeline.split"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert proc.returncode == 2 and "train.patience: must be >= 1" in proc.stderr, proc.stderr
    assert ("pipeline.crossval", "CrossvalConfig.from_params") in PARAMS_CHECKS


def test_main_module_is_only_the_entry_point():
    text = (ROOT / "pipeline" / "__main__.py").read_text()
    assert "def run_main" not in text and "COMMANDS" not in text and len(text.splitlines()) < 10


def test_documents_cited_in_the_code_are_in_the_repository():
    """Comments pointed at CORPORA.md, a file the project does not have: every document (NAME.md) the code,
    params or tests cite must exist in the repository."""
    import ast
    import re

    texts = {p: p.read_text() for p in [*ROOT.joinpath("pipeline").rglob("*.py"), *ROOT.joinpath("bench").glob("*.py"),
                                         ROOT / "params.yaml", ROOT / "dvc.yaml", ROOT / "README.md"]}
    for test in ROOT.joinpath("tests").glob("test_*.py"):  # their docstrings (fixtures name files freely)
        if test.name != "test_layering.py":
            texts[test] = ast.get_docstring(ast.parse(test.read_text())) or ""
    cited = {}
    for path, text in texts.items():
        for name in re.findall(r"\b[A-Z][A-Z0-9_-]*\.md\b", text):  # documents (README.md), not outputs (report.md)
            cited.setdefault(name, path.relative_to(ROOT).as_posix())
    have = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts}
    missing = {name: where for name, where in cited.items()
               if not (ROOT / name).exists() and Path(name).name not in have}
    assert not missing, f"cited but not in the repository: {missing}"


def test_demo_corpus_is_a_package_of_one_job_per_module():
    package = ROOT / "pipeline" / "demo_corpus"
    assert {p.stem for p in package.glob("*.py")} >= {"__init__", "espeak", "prosody", "effects", "pool"}
    assert not (ROOT / "pipeline" / "demo_corpus.py").exists()
    assert "pipeline.demo_corpus.espeak" not in imported_modules("pipeline.demo_corpus.effects")  # numpy only
