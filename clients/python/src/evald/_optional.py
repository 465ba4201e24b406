"""The optional extras, imported on first use so that ``import evald`` needs only httpx."""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType


@cache
def optional(name: str) -> ModuleType | None:
    """The module, or None when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def required(name: str, feature: str, extra: str) -> ModuleType:
    """The module, or an ImportError that says which extra to install."""
    module = optional(name)
    if module is None:
        raise ImportError(f"{feature} needs {name}: pip install 'evald[{extra}]'")
    return module
