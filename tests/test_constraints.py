"""constraints.txt pins every package the project installs, and the environment the tests run in is
the pinned one, so the byte-identical claims (demo audio, augmented copies, shards) hold across installs
(README: Reproducibility). audiomentations changed TimeStretch/PitchShift defaults between releases:
an unpinned or drifted package is what these tests catch."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# What render / balance / demo outputs are computed with (directly or inside librosa / audiomentations)
OUTPUT_PACKAGES = ("numpy", "scipy", "librosa", "soxr", "soundfile", "audiomentations", "python-stretch",
                   "numpy-minmax", "numpy-rms", "numba", "llvmlite", "pillow", "pyarrow", "pandas",
                   "scikit-learn", "espeakng-loader")


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and not re.search(r"[<>=!~;@ ]", version), f"not an exact pin: {line!r}"
            out[canonicalize_name(name)] = version.strip()
    return out


def project_requirements() -> list[Requirement]:
    """pyproject's dependencies and `test` extra, as installed (the distribution's metadata)."""
    reqs = [Requirement(r) for r in metadata.requires("ser-pipeline") or []]
    return [r for r in reqs if not r.marker or r.marker.evaluate({"extra": "test"})]


def closure(reqs: list[Requirement]) -> set[str]:
    """Every distribution those requirements pull in on this platform."""
    seen, todo = set(), list(reqs)
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            todo += [Requirement(r) for r in metadata.requires(req.name) or []]
        except metadata.PackageNotFoundError:
            pass  # reported by the test below
    return seen


@pytest.fixture(scope="module")
def installed_closure():
    try:
        return closure(project_requirements())
    except metadata.PackageNotFoundError:
        pytest.skip("the project is not pip-installed here (make install)")


def test_every_package_the_project_installs_is_pinned(installed_closure):
    missing = sorted(installed_closure - set(pins()))
    assert not missing, f"not pinned in constraints.txt: {missing}; run `make constraints`"
    assert set(map(canonicalize_name, OUTPUT_PACKAGES)) <= installed_closure


def test_the_installed_versions_are_the_pinned_ones(installed_closure):
    pinned = pins()
    drifted = {}
    for name in sorted(installed_closure & set(pinned)):
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            drifted[name] = "not installed"
            continue
        if version != pinned[name]:
            drifted[name] = f"{version} installed, {pinned[name]} pinned"
    assert not drifted, (f"{drifted}: reinstall (make install) or, after checking the outputs, re-pin with "
                         "`make constraints`")


def test_make_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-c \$\(CONSTRAINTS\) -e '\.\[test\]'", makefile)
    assert re.search(r"^CONSTRAINTS := constraints\.txt$", makefile, re.MULTILINE)
    assert re.search(r"^\$\(STAMP\): .*\$\(CONSTRAINTS\)", makefile, re.MULTILINE)  # re-pins reinstall


def test_pyproject_packages_files_that_exist_and_lists_each_dependency_once():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = [canonicalize_name(Requirement(r).name) for r in project["project"]["dependencies"]]
    assert len(names) == len(set(names)), f"listed twice: {sorted({n for n in names if names.count(n) > 1})}"
    for package, patterns in project["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"pyproject packages {package}/{pattern}: no such file"
