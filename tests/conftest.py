import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; deselect with -m 'not slow'")


@pytest.fixture(scope="session")
def fresh_process(tmp_path_factory):
    """ONE fresh interpreter for the session that has only done `import keras_shiftinv` before its first
    load: `fresh_process.load(paths, x=None, signature=None)` -> {path: facts} (see tests/helpers.py)."""
    from helpers import FreshLoader

    loader = FreshLoader(tmp_path_factory.mktemp("fresh_process") / "stderr.txt")
    yield loader
    loader.close()
