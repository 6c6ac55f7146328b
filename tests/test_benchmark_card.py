"""The model card's wording comes from the run's own record: a CPU run, a timed run and a GPU run differ."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_default_model.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_default_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "minutes, device, bit_for_bit, timed, gpu",
    [
        (None, "CPU (2 threads)", True, False, False),
        (88.0, "CPU (2 threads)", False, True, False),
        (None, "GPU: NVIDIA H100 80GB HBM3", False, False, True),
        (6.95, "GPU: NVIDIA H100 80GB HBM3", False, True, True),
    ],
)
def test_reproducibility_follows_budget_and_device(bench, minutes, device, bit_for_bit, timed, gpu):
    text = bench.reproducibility_text({"minutes": minutes}, {"device": device})
    assert ("reproduces the weights bit for bit" in text) == bit_for_bit
    assert ("wall-time budget" in text) == timed
    assert ("GPU, whose kernels are not bit-deterministic" in text) == gpu
