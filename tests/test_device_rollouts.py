"""Device-resident rollouts (agents.device_buffer): observations stay torch tensors on the device and the run
is the same as with SB3's host buffer (on CPU: bit-identical weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.device_buffer import DeviceDictRolloutBuffer
from agents.training import Trainer

from .test_training import _same, _weights, tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("algo", ["ppo", "a2c"])  # TRPO uses the same buffer class through the same kwarg
def test_the_device_buffer_trains_to_the_same_weights_as_the_host_buffer(tmp_path, algo):
    runs = {}
    for mode in ("host", "device"):
        t = Trainer(tiny(algo=algo, rollout_buffer=mode, iterations=1), tmp_path / mode, log=lambda _: None)
        assert t.device_rollouts == (mode == "device")
        assert isinstance(t.model.rollout_buffer, DeviceDictRolloutBuffer) == (mode == "device")
        t.fit(progress=False)
        runs[mode] = t
    assert _same(_weights(tmp_path / "host"), _weights(tmp_path / "device"))
    host, dev = runs["host"].model.rollout_buffer, runs["device"].model.rollout_buffer
    np.testing.assert_array_equal(host.rewards, dev.rewards)
    assert isinstance(dev.observations["features"], torch.Tensor)


def test_observations_stay_on_the_device_through_the_sb3_adapter(tmp_path):
    t = Trainer(tiny(rollout_buffer="device"), None, log=lambda _: None)
    obs = t.sb3_env.reset()
    assert isinstance(obs["features"], torch.Tensor) and obs["features"].device == t.device
    obs, rewards, dones, infos = t.sb3_env.step(np.zeros((t.config.batch_size, 4), dtype=np.float32))
    assert isinstance(obs["features"], torch.Tensor) and isinstance(rewards, np.ndarray)


def test_the_auto_buffer_is_the_host_one_on_cpu_and_device_needs_an_on_policy_algorithm():
    assert not Trainer(tiny(), None, log=lambda _: None).device_rollouts
    with pytest.raises(ValueError, match="--rollout-buffer device needs"):
        tiny(algo="sac", rollout_buffer="device").validate()


def test_out_of_memory_names_the_batch_size_option(tmp_path, monkeypatch):
    t = Trainer(tiny(), tmp_path / "run", log=lambda _: None)

    def out_of_memory() -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(t, "train_iteration", out_of_memory)
    with pytest.raises(RuntimeError, match=r"Lower --batch-size .* --episodes"):
        t.fit(progress=False)
