"""The GPU run's script (benchmarks/bench_gpu.py) in its dry run on the CPU: every benchmark section runs
end to end at tiny sizes and writes a report whose figures hold together. The anchors that do not import
here are skipped by the script itself (a line in the report). The pytest sections are left out: they
would run the suite from inside the suite."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # about 5 s: every section once at tiny sizes

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = "env,dense,online,geomloss,flash,features,emd"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table(section, first_header):
    for _, header, rows in section["tables"]:
        if header[0] == first_header:
            return [dict(zip(header, row)) for row in rows]
    raise AssertionError(f"no table starting with {first_header!r} in {section['heading']}")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-report")
    status = load_script().main(["--dry-run", "--device", "cpu", "--out", str(out), "--sections", SECTIONS])
    data = json.loads((out / "report.json").read_text())
    data["markdown"] = (out / "report.md").read_text()
    data["status"] = status
    return data


def test_every_section_ran(report):
    sections = report["sections"]
    assert list(sections) == SECTIONS.split(",")
    for name, section in sections.items():
        assert section["status"].startswith("done"), (name, section["status"], section["notes"])
    assert report["status"] == 0
    for section in sections.values():
        assert f"## {section['heading']}" in report["markdown"]
    assert sections["env"]["data"]["torch"]


def test_dense_and_online_figures(report):
    dense = report["sections"]["dense"]
    for row in table(dense, "dtype"):
        assert row["finite cost"] is True
        assert math.isfinite(row["time per iteration (us)"])  # a figure, not a timing assertion
    assert dense["data"]["copy_bandwidth_Bps"] > 0
    # the float32 cost is within float32 rounding of the float64 one at the default matmul precision
    assert table(dense, "matmul precision")[0]["max relative error of the cost"] < 1e-3
    online = table(report["sections"]["online"], "data")
    assert [row["data"] for row in online] == ["3-D", "64-D"]
    assert all(math.isfinite(row["objective after 3 it."]) for row in online)


def test_geomloss_and_flash_comparisons(report):
    rows = table(report["sections"]["geomloss"], "method")
    tolerance_rows = [row for row in rows if row["method"] == "otmetrics float32"]
    assert len(tolerance_rows) == 2
    for row in tolerance_rows:  # float32 runs agree with the float64 reference to float32 rounding
        assert row["max relative error vs reference OT_eps"] < 1e-4
    flash = table(report["sections"]["flash"], "n = m")
    assert flash[0]["method"].startswith("otmetrics")
    if importlib.util.find_spec("geomloss") is not None:
        geomloss = [row for row in rows if row["method"].startswith("GeomLoss tensorized")]
        assert geomloss and 0 < geomloss[0]["max relative error vs reference OT_eps"] < 0.1
        # GeomLoss's symmetric loop and our alternating one, both 10 iterations from zero potentials
        (same,) = [row for row in flash if row["method"].startswith("GeomLoss")]
        assert same["relative difference to otmetrics"] < 0.05
    else:
        assert any("GeomLoss: skipped" in note for note in report["sections"]["geomloss"]["notes"])


def test_features_and_emd(report):
    features = report["sections"]["features"]
    rows = table(features, "TF32")
    assert [row["TF32"] for row in rows] == ["off", "on"]
    if "torch-fidelity images/s" in rows[0]:  # torch-fidelity installed or its wheel in .whl/
        assert rows[0]["max |feature difference|"] <= 1e-4
    else:
        assert any("torch-fidelity: skipped" in note for note in features["notes"])
    for row in table(report["sections"]["emd"], "B"):
        assert row["results on the device"] is True and row["converged and certified"] is True
        assert row["relative difference of the costs"] <= 1e-12
