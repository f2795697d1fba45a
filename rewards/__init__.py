"""Reward models for AdaNAT (the evaluation they are judged by is :mod:`adanat_env.evaluation`).

- :mod:`rewards.adversarial`: the paper's adversarial reward sigmoid(D(x, y)) and its variants (the trainer's
  default: the jackknife pseudo-value of a same-class group's mean logit), co-trained between rollouts,
  as a vector-env wrapper (:class:`~rewards.adversarial.AdversarialRewardWrapper`);
  :mod:`rewards.discriminator`: the discriminators (projected over a frozen network, or conv from scratch).
- :mod:`rewards.fid_reward`: AdaNAT-FID, the batch-FID reward attributed to samples by jackknife pseudo-values.
- :mod:`rewards.sample_credit`: split credit, one reward for the schedule every sample shares and another (e.g. a
  pooled batch FID in a second classifier's features) for each sample's departure from it.

The pretrained-reward-model (PRM) variant's offline stand-in is the shipped classifier's probability of the
conditioning label, :meth:`adanat_env.models.classifier.SmallCNN.label_probability`; any callable
``(images, labels) -> (B,) rewards`` plugs in the same way.
"""
