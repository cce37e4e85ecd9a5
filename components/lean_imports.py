"""Keeps torchmetrics from importing Hugging Face transformers, which costs every process that imports
PyTorch Lightning (each search trial, the CLI, the flows) about four seconds on 2 cores.

torchmetrics imports ``transformers`` at its own import whenever the package is installed, for its
BERTScore, InfoLM and CLIP metrics (torchmetrics issue #2242, still so in 1.9). The platform never
uses those metrics; ``transformers`` is installed only because alibi-detect requires it. No setting
turns the import off, so a finder on ``sys.meta_path`` sets torchmetrics' transformers flags to False
right after ``torchmetrics.utilities.imports`` runs, before the modules that read them. Written by
hand because nothing upstream offers it; removing :func:`install` restores the eager import.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

TARGET = "torchmetrics.utilities.imports"
FLAGS = ("_TRANSFORMERS_AVAILABLE", "_TRANSFORMERS_GREATER_EQUAL_4_4", "_TRANSFORMERS_GREATER_EQUAL_4_10")


class _WithoutTransformers(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # the real finders locate the module; this one only wraps its loading
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module) -> None:
            run(module)
            for flag in FLAGS:
                if hasattr(module, flag):
                    setattr(module, flag, False)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Once per process, before torchmetrics is first imported (a later call changes nothing)."""
    if TARGET not in sys.modules and not any(isinstance(finder, _WithoutTransformers) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WithoutTransformers())
