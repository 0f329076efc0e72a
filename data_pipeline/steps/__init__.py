"""The four steps. Each step module defines `run(ctx: StepContext) -> dict`; the runner knows
steps only by name.

A deployment (or a test) can replace a step's implementation: every module named in
DATA_PIPELINE_STEP_MODULES is imported by the executor and may call `register_step(name, run)`.
"""
from __future__ import annotations

import importlib
from typing import Callable

from data_pipeline.tasks.statuses import STEP_NAMES
from data_pipeline.steps.context import StepContext

StepFunction = Callable[[StepContext], dict]

__all__ = ["StepContext", "StepFunction", "STEP_NAMES", "get_step", "register_step", "load_step_modules"]

_overrides: dict[str, StepFunction] = {}


def register_step(name: str, run: StepFunction) -> None:
    if name not in STEP_NAMES:
        raise ValueError(f"unknown step name {name!r}; steps are {', '.join(STEP_NAMES)}")
    _overrides[name] = run


def get_step(name: str) -> StepFunction:
    if name in _overrides:
        return _overrides[name]
    if name not in STEP_NAMES:
        raise KeyError(name)
    return importlib.import_module(f"data_pipeline.steps.{name}").run


def load_step_modules(module_names) -> None:
    for module_name in module_names:
        importlib.import_module(module_name)
