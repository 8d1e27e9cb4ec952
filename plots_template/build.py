"""Rebuild offline.html, the page template `dvc plots show` fills (see .dvc/config), from the npm packages.

DVC's own page loads vega, vega-lite and vega-embed from a CDN, so it stays blank on a machine without
internet. This one carries their minified builds inline. Versions are pinned here and in README.md; the
majors match the Vega-Lite v5 specs DVC's plot templates produce. Needs npm; run from anywhere:
    python plots_template/build.py
"""
from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "offline.html"
PACKAGES = (("vega", "5.33.1"), ("vega-lite", "5.23.0"), ("vega-embed", "6.29.0"))  # load order

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>DVC plots</title>
    <!-- Offline page: {versions} inlined (BSD-3-Clause, see plots_template/README.md).
         Deliberately without DVC's scripts placeholder: DVC would put its CDN script tags there. -->
{libraries}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def minified_build(package: str, version: str, workdir: Path) -> str:
    """The package's build/<name>.min.js from `npm pack`, without its source-map comment (no .map shipped)."""
    out = subprocess.run(["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", str(workdir)],
                         check=True, capture_output=True, text=True).stdout
    tarball = workdir / json.loads(out)[0]["filename"]
    with tarfile.open(tarball) as tar:
        meta = json.load(tar.extractfile("package/package.json"))
        code = tar.extractfile(f"package/build/{package}.min.js").read().decode("utf-8")
    if meta["license"] != "BSD-3-Clause":
        raise SystemExit(f"{package}@{version}: licence {meta['license']!r}, README.md says BSD-3-Clause")
    for bad in ("</script", "<!--", "{plot_divs}", "{scripts}", "{refresh_tag}"):  # end the <script> early or
        if bad in code.lower():                                                  # get replaced by DVC
            raise SystemExit(f"{package}@{version}: the build contains {bad!r}, cannot be inlined")
    lines = code.rstrip("\n").split("\n")
    if lines[-1].startswith("//# sourceMappingURL="):
        lines.pop()
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scripts = [f"    <script>/*! {name}@{version}, BSD-3-Clause */\n{minified_build(name, version, Path(tmp))}"
                   "\n    </script>" for name, version in PACKAGES]
    versions = ", ".join(f"{n}@{v}" for n, v in PACKAGES)
    TEMPLATE.write_text(PAGE.format(versions=versions, libraries="\n".join(scripts)), encoding="utf-8")
    print(f"wrote {TEMPLATE} ({TEMPLATE.stat().st_size / 1024:.0f} KiB): {versions}")


if __name__ == "__main__":
    main()
