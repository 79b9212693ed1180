"""Item 5 of issue 15: small models pick a sane CPU thread policy themselves.

OMP_WAIT_POLICY=PASSIVE is set before torch loads OpenMP (only when the user has not set it), and
every trainer's fit runs torch on one thread when its work per step is small, restoring the count.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import embedkit as ek
from embedkit import _device

torch = pytest.importorskip("torch")


def _env_when_torch_loads(tmp_path, extra_env: dict, code: str) -> str:
    """OMP_WAIT_POLICY as a stand-in torch module sees it at the moment it is imported (what OpenMP reads)."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os\nprint('at torch import:', os.environ.get('OMP_WAIT_POLICY'))\n"
                                      "raise SystemExit(0)\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(extra_env, PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), env.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_trainer_import_sets_passive_wait_policy_before_torch_loads(tmp_path):
    out = _env_when_torch_loads(tmp_path, {}, "import embedkit as ek; ek.AutoEncoder")
    assert out == "at torch import: PASSIVE"


def test_user_wait_policy_is_kept(tmp_path):
    out = _env_when_torch_loads(tmp_path, {"OMP_WAIT_POLICY": "ACTIVE"}, "import embedkit as ek; ek.SiameseEncoder")
    assert out == "at torch import: ACTIVE"


def test_too_late_when_torch_came_first_leaves_the_environment_alone(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert "torch" in sys.modules
    assert _device.prefer_passive_wait() is False
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.delitem(sys.modules, "torch")
    assert _device.prefer_passive_wait() is True
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def _table(n=60, d=8):
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("make", [
    lambda: ek.AutoEncoder(dim=2, hidden=(8,), epochs=2, device="cpu"),
    lambda: ek.SiameseEncoder(dim=2, hidden=(8,), epochs=2, batch_size=8, device="cpu"),
])
def test_small_fit_runs_on_one_thread_and_restores_the_count(monkeypatch, make):
    monkeypatch.delenv("EMBEDKIT_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        X = _table()
        y = np.arange(len(X)) % 3
        model = make()
        args = (X, y) if isinstance(model, ek.SiameseEncoder) else (X,)
        model.fit(*args, show_progress=False, callback=lambda e, loss: seen.append(torch.get_num_threads()))
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_thread_count_restored_when_fit_fails(monkeypatch):
    monkeypatch.delenv("EMBEDKIT_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ek.InputError):
            ek.AutoEncoder(dim=2, epochs=1, device="cpu").fit(np.full((10, 3), np.nan), show_progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_environment_variable_forces_the_count(monkeypatch):
    monkeypatch.setenv("EMBEDKIT_NUM_THREADS", "2")
    seen = []
    ek.AutoEncoder(dim=2, hidden=(8,), epochs=1, device="cpu").fit(
        _table(), show_progress=False, callback=lambda e, loss: seen.append(torch.get_num_threads()))
    assert seen == [2]
    monkeypatch.setenv("EMBEDKIT_NUM_THREADS", "many")
    with pytest.raises(ek.InputError, match="EMBEDKIT_NUM_THREADS"):
        ek.AutoEncoder(dim=2, epochs=1, device="cpu").fit(_table(), show_progress=False)


def test_threads_for_keeps_the_count_for_large_or_unknown_work(monkeypatch):
    monkeypatch.delenv("EMBEDKIT_NUM_THREADS", raising=False)
    assert _device.threads_for(None, 8) == 8
    assert _device.threads_for(_device.SMALL_WORK * 10, 8) == 8
    assert _device.threads_for(1000, 8) == 1


def test_work_estimate_of_the_table_models():
    ae = ek.AutoEncoder(dim=16, hidden=(128, 64), batch_size=16)
    assert ae._work_per_step((_table(90, 64),), {}) == 16 * (64 * 128 + 128 * 64 + 64 * 16)
    assert ae._work_per_step((_table(5, 64),), {}) == 5 * (64 * 128 + 128 * 64 + 64 * 16)  # batch capped by rows
    lin = torch.nn.Linear(64, 4)
    assert ek.SiameseEncoder(dim=4, encoder=lin, batch_size=32)._work_per_step((_table(90, 64),), {}) == 32 * (64 * 4 + 4)
    assert ek.Word2Vec()._work_per_step(([["a", "b"]],), {}) is None  # sizes its own threads (workers)


def test_fit_signature_is_unchanged_by_the_wrapper():
    import inspect

    for cls in (ek.AutoEncoder, ek.SiameseEncoder, ek.Word2Vec, ek.Node2Vec, ek.MatrixFactorization):
        params = inspect.signature(cls.fit).parameters
        assert params["show_progress"].kind is inspect.Parameter.KEYWORD_ONLY
