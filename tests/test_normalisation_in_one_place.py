"""Speaker normalisation lives in one object (pipeline/normalisation.py): no other module computes statistics of
rows to normalise them by, so train, evaluate, crossval, predict and export cannot drift apart."""
from __future__ import annotations

import re
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"
# what normalising rows by their statistics looks like in numpy or scikit-learn
PATTERNS = re.compile(r"\.std\(\s*axis|\.var\(\s*axis|np\.std\(|np\.var\(|StandardScaler|zscore|standardi[sz]e_by"
                      r"|population_stats|MIN_SPEAKER")
ALLOWED = {
    # the in-model Normalization layer's statistics (a feature model's first layer scales its already speaker-
    # normalised input; it travels inside the model), not speaker normalisation
    ("train.py", "var = flat.var(axis=0).reshape(x.shape[1:]) + 1e-6"),
    # the field's baseline as published (eGeMAPS + SVM): scikit-learn scales the SVM's input on its training rows
    ("crossval.py", "from sklearn.preprocessing import StandardScaler"),
    ("crossval.py", "scaler = StandardScaler().fit(x_train)"),
}


def test_no_normalisation_code_outside_the_one_object():
    found = []
    for path in sorted(PIPELINE.rglob("*.py")):
        if path.name == "normalisation.py":
            continue
        for line in path.read_text().splitlines():
            if PATTERNS.search(line) and (path.name, line.strip()) not in ALLOWED:
                found.append(f"{path.relative_to(PIPELINE.parent)}: {line.strip()}")
    assert not found, "normalisation outside pipeline/normalisation.py:\n" + "\n".join(found)
