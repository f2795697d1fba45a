"""Reward models and image-quality metrics for AdaNAT.

- :mod:`rewards.metrics`: FID / KID / precision-recall / coverage in frozen feature spaces (classifier,
  EfficientNet-Lite0, local FID Inception); :mod:`rewards.evaluation`: evaluate a generation policy.
- :mod:`rewards.classifier`: the small CNN trained on the real train split; :mod:`rewards.prm`: the stand-in
  pretrained reward model (classifier confidence); :mod:`rewards.base`: the reward-model interface.

The adversarial (discriminator) reward of the paper comes with the training issue.
"""
