"""Reward models and image-quality metrics for AdaNAT (adversarial reward, FID). Filled in by later issues."""
