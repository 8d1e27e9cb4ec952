"""One look for every picture the pipeline writes: a fixed colour per system, the ways of meeting a speaker in
one order with one wording, and the Agg backend (plots are written once per run, headless).

Colours: a system keeps its colour in every picture (the fusion blue, its spectrogram branch orange, its
functionals branch green, the field's baseline grey); a fusion's branch "<model> (fusion branch)" has its
model's colour. Other models get a colour of their own out of the rest of the palette, the same name the same
colour from run to run where two of them do not collide in one run.
"""
from __future__ import annotations

import zlib
from pathlib import Path

BASELINE = "baseline_egemaps_svm"  # crossval.BASELINE_SYSTEM (kept here so that this module imports no stage)
BRANCH_SUFFIX = " (fusion branch)"  # crossval.branch_system
BASELINE_GREY = "#8c8c8c"
SYSTEM_COLOURS = {"fusion": "#1f77b4", "cnn_pooled": "#ff7f0e", "functionals": "#2ca02c", BASELINE: BASELINE_GREY}
OTHER_COLOURS = ("#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939",
                 "#843c39", "#7b4173")

# one colour per emotion in every picture of segments (predict --plot); an unsure answer grey
EMOTION_COLOURS = {"angry": "#d62728", "happy": "#ffbf00", "sad": "#1f77b4", "neutral": "#2ca02c",
                   "fearful": "#9467bd", "disgust": "#8c564b", "surprise": "#e377c2", "calm": "#17becf"}
UNCERTAIN_GREY = "#b0b0b0"

# the ways a user meets a model, from the most known of the speaker to the least (the README's column order)
MODE_ORDER = ("transductive", "enrolled10", "enrolled5", "enrolled_neutral", "cold")
MODE_LABELS = {"transductive": "transductive\n(all its recordings)", "enrolled10": "enrolled\n(10 recordings)",
               "enrolled5": "enrolled\n(5 recordings)", "enrolled_neutral": "enrolled on\nneutral speech",
               "cold": "cold\n(one file of a stranger)"}


def base_model(system: str) -> str:
    """The model a system is: a fusion's branch is its model's."""
    return system[:-len(BRANCH_SUFFIX)] if system.endswith(BRANCH_SUFFIX) else system


def system_colours(systems) -> dict[str, str]:
    """{system: colour} for every picture of one run: fixed ones first, the others from the rest of the
    palette, starting where the name's hash points and skipping colours already taken."""
    out: dict[str, str] = {}
    for system in systems:
        if base_model(system) in SYSTEM_COLOURS:
            out[system] = SYSTEM_COLOURS[base_model(system)]
    by_model = {base_model(s): c for s, c in out.items()}
    for system in systems:
        if system in out:
            continue
        if base_model(system) in by_model:  # a model and its fusion branch: one colour
            out[system] = by_model[base_model(system)]
            continue
        taken = set(out.values())
        start = zlib.crc32(base_model(system).encode())
        free = [OTHER_COLOURS[(start + i) % len(OTHER_COLOURS)] for i in range(len(OTHER_COLOURS))]
        out[system] = by_model[base_model(system)] = next((c for c in free if c not in taken), free[0])
    return out


def mode_order(modes) -> list[str]:
    """The modes present, in MODE_ORDER, any other after them as they came."""
    modes = list(dict.fromkeys(modes))
    return [m for m in MODE_ORDER if m in modes] + [m for m in modes if m not in MODE_ORDER]


def mode_label(mode: str, one_line: bool = False) -> str:
    label = MODE_LABELS.get(mode, mode)
    return label.replace("\n", " ") if one_line else label


def pyplot():
    """matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 110) -> None:
    """Write the figure as a PNG atomically and free it."""
    from pipeline.io import atomic_path

    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
