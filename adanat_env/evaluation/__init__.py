"""Evaluation of generation policies: image-quality metrics in frozen feature spaces, and the sampling around them.

- :mod:`adanat_env.evaluation.metrics`: FID / KID / precision-recall / coverage in a frozen feature space
  (the Fashion-MNIST classifier, EfficientNet-Lite0, the local FID Inception), reference statistics.
- :mod:`adanat_env.evaluation.inception`: the standard FID Inception-v3, from a local weights file.
- :mod:`adanat_env.evaluation.sampling`: class-balanced samples of a policy and their metrics.
- :mod:`adanat_env.evaluation.make_reference`: the CLI that precomputes reference statistics of a real split
  (``python -m adanat_env.evaluation.make_reference``).

The feature networks themselves are models: :mod:`adanat_env.models.classifier`,
:mod:`adanat_env.models.efficientnet`.
"""
