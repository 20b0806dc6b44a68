"""The repository modules, for tests that check something of every one of them."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import db.analysis
import db.calls
import db.desk

PACKAGES = (db.calls, db.desk, db.analysis)


def repository_modules() -> list[ModuleType]:
    """Every module of db.calls, db.desk and db.analysis, imported (which registers their constraints)."""
    return [importlib.import_module(f"{package.__name__}.{info.name}")
            for package in PACKAGES for info in pkgutil.iter_modules(package.__path__)]
