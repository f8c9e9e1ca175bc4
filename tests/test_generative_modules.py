"""The layout of otmetrics.generative: one concept per module, no private name across modules, every
name importable from where it was (the flat API, the module that held it, the 0.1 paths)."""

from __future__ import annotations

import ast
import importlib
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import otmetrics

GENERATIVE = Path(otmetrics.__file__).parent / "generative"
MODULES = sorted(p.stem for p in GENERATIVE.glob("*.py") if p.stem != "__init__")


def test_no_private_name_crosses_a_module_border():
    """``from .x import _y`` (or ``x._y``) between the modules of otmetrics.generative: what two modules
    share is public in one of them (otmetrics._core is the only exception)."""
    offences = []
    for path in sorted(GENERATIVE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("_core"):
                offences += [f"{path.name}: from {'.' * node.level}{node.module} import {a.name}"
                             for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offences, offences


def test_importing_the_package_and_its_generative_modules_does_not_import_torch():
    code = ("import sys, otmetrics\n"
            + "".join(f"import otmetrics.generative.{m}\n" for m in MODULES)
            + "otmetrics.kernels.KERNELS, otmetrics.gaussian.GaussianStats\n"
            + "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n")
    root = str(Path(otmetrics.__file__).parents[1])  # this checkout, whatever the working directory
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code], check=True, env=env,
                   cwd=root)


@pytest.mark.parametrize("module,name,home", [
    ("otmetrics.generative.kernels", "mmd", "otmetrics.generative.mmd"),
    ("otmetrics.generative.kernels", "ESTIMATORS", "otmetrics.generative.mmd"),
    ("otmetrics.generative.kernels", "kid", "otmetrics.generative.kid"),
    ("otmetrics.generative.kernels", "kid_subset_indices", "otmetrics.generative.kid"),
    ("otmetrics.generative.gaussian", "frechet_distance", "otmetrics.generative.frechet"),
])
def test_names_that_moved_still_resolve_from_their_old_module(module, name, home):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently: these modules are not deprecated
        value = getattr(importlib.import_module(module), name)
    assert value is getattr(importlib.import_module(home), name)
    with pytest.raises(AttributeError, match=f"module '{module}' has no attribute 'nope'"):
        importlib.import_module(module).nope


@pytest.mark.parametrize("path,name,home", [
    ("otmetrics.kernels", "mmd", "otmetrics.generative.mmd"),
    ("otmetrics.kernels", "ESTIMATORS", "otmetrics.generative.mmd"),
    ("otmetrics.kernels", "kid", "otmetrics.generative.kid"),
    ("otmetrics.kernels", "kid_subset_indices", "otmetrics.generative.kid"),
    ("otmetrics.kernels", "KERNELS", "otmetrics.generative.kernels"),
    ("otmetrics.kernels", "median_bandwidth", "otmetrics.generative.kernels"),
    ("otmetrics.kernels", "kernel_matrix", "otmetrics.generative.kernels"),
    ("otmetrics.gaussian", "frechet_distance", "otmetrics.generative.frechet"),
    ("otmetrics.gaussian", "GaussianStats", "otmetrics.generative.gaussian"),
    ("otmetrics.metrics", "FID", "otmetrics.generative.metrics"),
    ("otmetrics.metrics", "MMD", "otmetrics.generative.metrics"),
    ("otmetrics.inception_score", "inception_score", "otmetrics.generative.inception_score"),
])
def test_the_0_1_paths_warn_and_name_the_module_that_defines_the_name(path, name, home):
    module = importlib.import_module(path)
    flat = f"otmetrics \\(or {home}\\)" if name in otmetrics.__all__ else home
    with pytest.warns(DeprecationWarning, match=rf"{path} is deprecated .* import {name} from {flat}$"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(home), name)
    assert name in module.__all__ or name == "kid_subset_indices"


def test_a_kid_pickled_by_otmetrics_0_1_unpickles():
    """0.1 pickled a KID as otmetrics.metrics.KID holding otmetrics.metrics._Rows buffers; RowBuffer is
    that class renamed, and the state of the objects is unchanged."""
    rng = np.random.default_rng(0)
    metric = otmetrics.KID(subsets=3, subset_size=10)
    metric.update(rng.normal(size=(20, 4)), real=True)
    metric.update(rng.normal(size=(20, 4)) + 1.0, real=False)
    data = pickle.dumps(metric, protocol=0)  # text opcodes: the class paths can be rewritten
    for new, old in ((b"otmetrics.generative.metrics\nKID\n", b"otmetrics.metrics\nKID\n"),
                     (b"otmetrics.generative.streaming\nRowBuffer\n", b"otmetrics.metrics\n_Rows\n")):
        assert new in data
        data = data.replace(new, old)
    with pytest.warns(DeprecationWarning, match="otmetrics.metrics is deprecated"):
        again = pickle.loads(data)
    assert type(again) is otmetrics.KID and again.compute() == metric.compute()
