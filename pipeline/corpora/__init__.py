"""Registry of corpus adapters: one module per corpus, listed here."""
from __future__ import annotations

import importlib
from types import ModuleType

from pipeline.corpora.base import Entry, Excluded, Rejected

ADAPTER_NAMES = ("ravdess", "cremad", "tess", "savee", "jl", "esd", "emodb", "demo")


def get_adapter(name: str) -> ModuleType:
    if name not in ADAPTER_NAMES:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(ADAPTER_NAMES)}")
    return importlib.import_module(f"pipeline.corpora.{name}")


def all_adapters() -> dict[str, ModuleType]:
    return {name: get_adapter(name) for name in ADAPTER_NAMES}


__all__ = ["ADAPTER_NAMES", "get_adapter", "all_adapters", "Entry", "Rejected", "Excluded"]
