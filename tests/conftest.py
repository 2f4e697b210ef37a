import importlib.util
from pathlib import Path

import pytest

from helpers import REPO, shared_dir


# Converted-model fixtures shared by all tests (wholebody_t_dir, body_t_dir, rtmdet_dir, ...).
pytest_plugins = ["model_fixtures"]


def _load_benchmark_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def benchmark_script():
    """`benchmark_script("bench_table")`: a script of benchmarks/ (not a package) loaded as a
    module, so tests call its functions."""
    return _load_benchmark_script


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "README.md").is_file():
        pytest.fail(f"shared assets not found at {path}; set EDGEPOSE_SHARED")
    return path


@pytest.fixture
def one_torch_thread():
    """The test machine's 2 cores are shared; torch's own threads only contend there."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
