"""AdaNAT gym: frozen masked-token generators, their decoding step, and (next) Gymnasium environments.

Sub-modules: :mod:`adanat_env.models` (U-ViT NAT, MaskGIT VQGAN, loaders), :mod:`adanat_env.decoding`
(the step math), :mod:`adanat_env.schedules` (schedules, action mapping), :mod:`adanat_env.generator`
(the generator interface), :mod:`adanat_env.sampler` (batched generation).
"""

__version__ = "0.1.0"
