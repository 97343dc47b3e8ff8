"""The tiny paper study end to end, as a clean clone without data runs it.

`etio reproduce --config experiments/paper-tiny.toml --out DIR` with an empty home (so the
default data directory is empty): the generated MNIST / CIFAR-10 / CIFAR-100 files are written
in their own formats and read back through torchvision's classes; one pooled traces.csv holds
rows of the three datasets and four architectures; every attack column the paper has is
filled; graphs, tables and the report are written, and provenance and report say the data
is synthetic.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from etio.pipeline.reproduce import TABLES
from tests.support.cli import run_etio
from tests.support.repo import REPO

ATTACKS = ["MLLeakAcc", "MLLeakLAcc", "Top3MLLeakAcc", "Top3MLLeakLAcc", "Oak17Acc", "ThresholdAcc"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("tiny") / "run"
    proc = run_etio("reproduce", "--config", "experiments/paper-tiny.toml", "--out", out, "--device", "cpu",
                    timeout=900, env={"HOME": str(home), "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, home / ".cache" / "etio" / "data", proc.stderr


@pytest.mark.slow
def test_tiny_study_pools_three_datasets_and_four_architectures(tiny_run):
    out, data_dir, log = tiny_run
    assert f"{data_dir} was empty: wrote generated cifar10, cifar100, mnist files" in log
    assert (data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert (data_dir / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert (data_dir / "cifar-100-python" / "train").is_file()
    traces = pd.read_csv(out / "traces.csv")
    assert len(traces) == 104
    assert set(traces["Dataset"]) == {"mnist", "cifar10", "cifar100"}
    assert set(traces["Arch"]) == {"mlp_1hidden", "alexnetwol", "resnet34", "densenet161"}
    assert set(traces.loc[traces["Dataset"] == "cifar100", "Loss"]) == {"ce"}
    assert traces[ATTACKS].notna().all().all()
    normal = traces["WeightDecay"] == 0.0005
    assert traces.loc[normal, "MemguardAcc"].notna().all() and traces.loc[~normal, "MemguardAcc"].isna().all()
    assert traces["NumParams"].nunique() == 7       # 4 architectures, CIFAR-10 and CIFAR-100 heads differ


@pytest.mark.slow
def test_tiny_study_writes_graphs_tables_and_says_the_data_is_synthetic(tiny_run):
    out, data_dir, _ = tiny_run
    for wd in ("0.0005", "0.005"):
        dots = list((out / "graphs" / f"wd_{wd}").glob("*.dot"))
        assert len(dots) >= 6, (wd, dots)
        assert (out / "ates" / f"ates-wd_{wd}.csv").is_file()
    for name in TABLES:
        assert (out / "tables" / name / f"{name}.csv").is_file()
    record = json.loads((out / "provenance.json").read_text())
    assert record["data"]["cifar10"]["synthetic"] is True and record["data"]["mnist"]["train_images"] == 120
    assert "generated stand-ins" in record["data_notice"]
    report = (out / "report.md").read_text()
    assert "**Synthetic data.**" in report and str(data_dir) in report
