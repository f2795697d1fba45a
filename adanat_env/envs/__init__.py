"""Gymnasium environments over the frozen NAT decoding process."""

from .adanat import DEFAULT_ACTION_BOUND, AdaNATEnv, AdaNATVectorEnv, DecodingSpec, decoding_spec_of
from .registration import ENV_IDS, register_envs

__all__ = ["AdaNATEnv", "AdaNATVectorEnv", "DEFAULT_ACTION_BOUND", "DecodingSpec", "decoding_spec_of", "ENV_IDS", "register_envs"]
