"""dvc.yaml cannot go stale: each stage depends on every pipeline module its command runs (imports
inside functions included, found by reading the code), and paths that are params are templated from
params.yaml rather than written twice."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from pipeline.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
# Not required as a dependency: the command table and the CLI wrapper (which also runs every section's
# params check, deciding whether a stage starts, not what it writes); depending on them would re-run every
# stage when a command is added.
NOT_REQUIRED = {"pipeline.__main__", "pipeline.cli"}


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def imported_modules(name: str) -> set[str]:
    """pipeline modules `name` imports anywhere in its code (module level or inside functions)."""
    path = module_path(name)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from pipeline import audio`
    found = {m for m in found if m.split(".")[0] == "pipeline" and module_path(m)}
    if path.name == "__init__.py" and "importlib" in path.read_text():  # loads its modules by name (zoo, corpora)
        found |= {f"{name}.{p.stem}" for p in path.parent.glob("*.py") if p.stem != "__init__"}
    return found


def code_run_by(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages' __init__ run too
        todo += imported_modules(name)
    return seen


def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_module(stage: dict) -> str:
    command = stage["cmd"].strip()
    if match := re.fullmatch(r"python -m (pipeline\.[\w.]+)", command):
        return match.group(1)
    match = re.fullmatch(r"python -m pipeline (\S+)", command)
    assert match, f"{command!r}: expected `python -m pipeline <command>` or `python -m pipeline.<module>`"
    return COMMANDS[match.group(1)][0]


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", list(stages()))
def test_stage_depends_on_all_the_code_it_runs(name):
    stage = stages()[name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    missing = sorted(module_path(m).relative_to(ROOT).as_posix()
                     for m in code_run_by(stage_module(stage)) - NOT_REQUIRED
                     if not covered(module_path(m), deps))
    assert not missing, f"dvc.yaml stage {name!r} runs code it does not depend on: {missing}"
    for dep in deps:
        assert "${" in dep or (ROOT / dep).exists() or not dep.startswith("pipeline"), f"{name}: {dep} is not a file"


def test_the_closure_sees_imports_inside_functions():
    # evaluate imports report, zoo and dataset only inside functions: exactly what went stale before
    assert {"pipeline.report", "pipeline.zoo", "pipeline.dataset", "pipeline.metrics"} <= code_run_by("pipeline.evaluate")


def test_paths_that_are_params_are_written_once():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    text = (ROOT / "dvc.yaml").read_text()
    for key, value in (("data.raw_dir", params["data"]["raw_dir"]), ("demo.out_dir", params["demo"]["out_dir"])):
        assert not re.search(rf"^\s*-\s*{re.escape(value)}/?\s*:?\s*(#.*)?$", text, re.MULTILINE), \
            f"dvc.yaml writes {value} instead of ${{{key}}}"
    assert "${demo.out_dir}" in text


def test_dvc_resolves_the_templated_paths_from_params():
    dvc_repo = pytest.importorskip("dvc.repo")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    repo = dvc_repo.Repo(str(ROOT))
    try:
        resolved = {s.name: s for s in repo.index.stages}
    finally:
        repo.close()
    assert params["demo"]["out_dir"] in {str(d.def_path) for d in resolved["ingest"].deps}
    assert [str(o.def_path) for o in resolved["demo"].outs] == [params["demo"]["out_dir"]]


def test_make_creates_the_raw_dir_params_name():
    import shutil
    import subprocess

    if not shutil.which("make"):
        pytest.skip("no make")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = subprocess.run(["make", "--no-print-directory", "-s", "--eval", "print-raw: ; @echo $(RAW_DIR)",
                          "print-raw"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == params["data"]["raw_dir"]


def test_every_data_model_and_metrics_path_of_dvc_yaml_is_the_one_pipeline_paths_defines():
    """Each path is defined once, in pipeline/paths.py, and the stages import it from there; dvc.yaml (which DVC
    needs) must name the same paths, so a path moved in the code fails here rather than in a stale lock."""
    from pipeline import paths

    defined = {p.as_posix() for p in vars(paths).values() if isinstance(p, Path)}
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    named = set(dvc_yaml["metrics"])
    for stage in dvc_yaml["stages"].values():
        for entry in stage.get("deps", []) + stage.get("outs", []) + stage.get("plots", []):
            named.add(entry if isinstance(entry, str) else next(iter(entry)))
    named = {p for p in named if not p.startswith("pipeline") and "${" not in p}
    assert named and not named - defined, f"not in pipeline/paths.py: {sorted(named - defined)}"
    curves = [f for plot in dvc_yaml["plots"] if isinstance(plot, dict) for f in next(iter(plot.values()))["y"]]
    assert curves and all(f.startswith(paths.TRAIN_CURVES.as_posix() + "/") for f in curves)
    images = [plot for plot in dvc_yaml["plots"] if isinstance(plot, str)]  # pictures a stage writes in its folder
    assert all(any(image.startswith(p + "/") for p in defined) for image in images)
