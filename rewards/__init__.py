"""Reward models and image-quality metrics for AdaNAT.

- :mod:`rewards.adversarial`: the paper's adversarial reward sigmoid(D(x, y)), co-trained between rollouts,
  as a vector-env wrapper (:class:`~rewards.adversarial.AdversarialRewardWrapper`);
  :mod:`rewards.discriminator`: the discriminators (projected over a frozen network, or conv from scratch).
- :mod:`rewards.fid_reward`: AdaNAT-FID, the batch-FID reward attributed to samples by jackknife pseudo-values.
- :mod:`rewards.prm`: the pretrained-reward-model plug point with its offline stand-in (classifier confidence).
- :mod:`rewards.metrics`: FID / KID / precision-recall / coverage in frozen feature spaces (classifier,
  EfficientNet-Lite0, local FID Inception); :mod:`rewards.evaluation`: evaluate a generation policy.
- :mod:`rewards.classifier`: the small CNN trained on the real train split; :mod:`rewards.base`: the
  reward-model interface.
"""
