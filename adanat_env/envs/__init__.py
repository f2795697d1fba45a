"""Gymnasium environments over the frozen NAT decoding process."""

from .adanat import AdaNATEnv, AdaNATVectorEnv
from .spec import DEFAULT_ACTION_BOUND, DecodingSpec, decoding_spec_of
from .registration import ENV_IDS, TEXT_ENV_IDS, register_envs

__all__ = ["AdaNATEnv", "AdaNATVectorEnv", "DEFAULT_ACTION_BOUND", "DecodingSpec", "decoding_spec_of", "ENV_IDS", "TEXT_ENV_IDS", "register_envs"]
