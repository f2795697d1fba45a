"""Stable-Baselines3 adapter: an SB3 ``VecEnv`` over a native Gymnasium vector env.

SB3 2.x does not consume ``gymnasium.vector.VectorEnv``; :func:`to_sb3` wraps one (for example
``gym.make_vec("AdaNAT-FashionMNIST-v0", num_envs=64, vectorization_mode="vector_entry_point")``) with SB3's
conventions: ``reset()`` returns observations only and fills ``reset_infos``; seeds set by ``VecEnv.seed`` /
options by ``set_options`` are consumed on the next reset (the native env takes one seed: the first);
``step_wait`` returns ``(obs, rewards, dones, infos)`` with a list of per-env info dicts holding
``terminal_observation`` and ``TimeLimit.truncated`` for finished envs (the native env uses SAME_STEP autoreset,
which is SB3's convention); ``get_attr`` / ``set_attr`` / ``env_method`` act on the single native env and
return per-env lists; ``env_is_wrapped`` returns a list. Put ``VecMonitor`` outermost (``monitor=True``) so
episode returns reach SB3's logger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv, VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

__all__ = ["SB3VecEnvAdapter", "to_sb3"]


class SB3VecEnvAdapter(VecEnv):
    """SB3 ``VecEnv`` over a native Gymnasium vector env with SAME_STEP (or DISABLED-free) autoreset.

    :param venv: the Gymnasium vector env (wrappers allowed).
    """

    def __init__(self, venv: VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"the adapter needs a vector env with AutoresetMode.SAME_STEP, got {mode!r}")
        self.venv = venv
        self.render_mode = getattr(venv, "render_mode", None)
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, infos = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs = infos.get("final_obs")
            final_info = infos.get("final_info", {})
            for i in np.flatnonzero(dones):
                info = out[i]
                if final_obs is not None:
                    info["terminal_observation"] = final_obs[i]
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                for k, v in final_info.items():
                    if not k.startswith("_"):
                        info[k] = v[i]
        return obs, np.asarray(rewards, dtype=np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    def _n(self, indices: VecEnvIndices) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * self._n(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv.unwrapped if not hasattr(self.venv, attr_name) else self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        return [getattr(self.venv, method_name)(*method_args, **method_kwargs)] * self._n(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        env, wrapped = self.venv, False
        while hasattr(env, "env"):
            wrapped = wrapped or isinstance(env, wrapper_class)
            env = env.env
        return [wrapped] * self._n(indices)


def to_sb3(venv: VectorEnv, monitor: bool = True, device_observations: bool = False) -> VecEnv:
    """Wrap a native Gymnasium vector env for SB3; with ``monitor``, ``VecMonitor`` is the outermost wrapper.

    :param device_observations: the AdaNAT env hands observations over as torch tensors on its device (for
        :class:`agents.device_buffer.DeviceDictRolloutBuffer`; SB3's ``obs_as_tensor`` passes tensors through).
    """
    if device_observations:
        if not hasattr(venv.unwrapped, "observations_on_device"):
            raise ValueError("device_observations needs an AdaNAT vector env (observations_on_device)")
        venv.unwrapped.observations_on_device = True
    adapter = SB3VecEnvAdapter(venv)
    return VecMonitor(adapter) if monitor else adapter
