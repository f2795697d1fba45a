"""Gymnasium environments over the frozen NAT decoding process."""

from .adanat import AdaNATEnv, AdaNATVectorEnv, DEFAULT_ACTION_BOUND, RewardModel
from .registration import ENV_IDS, register_envs

__all__ = ["AdaNATEnv", "AdaNATVectorEnv", "DEFAULT_ACTION_BOUND", "RewardModel", "ENV_IDS", "register_envs"]
