"""PyTorch's DistributedDataParallel under SB3's on-policy algorithms (PPO, A2C).

SB3 has no distributed training. Its on-policy ``train()`` computes every gradient from one call,
``policy.evaluate_actions(observations, actions)``, followed by ``loss.backward()``, gradient clipping and the
optimizer step. :func:`data_parallel` wraps that call in :class:`~torch.nn.parallel.DistributedDataParallel`:
the policy's :meth:`~agents.policies.FixedStdMixin.evaluate_actions` goes through DDP whenever gradients are on
(rollouts, under ``no_grad``, stay local), so ``backward()`` returns the gradients averaged over the ranks, before
SB3 clips them; every rank then takes the same Adam step and holds the same weights. DDP also starts every rank
from rank 0's weights. Each rank's minibatch is its share of the global one, so the averaged gradient is the
global minibatch's (the advantages are normalised per rank's minibatch, SB3's per-minibatch rule applied to the
share). The gradients' all-reduce is counted in :data:`adanat_env.distributed.COMM` under ``policy``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from adanat_env.distributed import COMM

__all__ = ["DATA_PARALLEL_ALGOS", "data_parallel"]

# the official trunk's 1 x 1 convolutions get channels-last gradients: DDP copies them into its buckets (correct,
# a copy of a few hundred kB per step), and says so at every backward
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

#: Algorithms whose every gradient comes from ``evaluate_actions`` then ``backward()`` (TRPO's natural gradient
#: and the off-policy algorithms' replay buffers are not data-parallel here).
DATA_PARALLEL_ALGOS = ("ppo", "a2c")


class _EvaluateActions(nn.Module):
    """The policy's own ``evaluate_actions`` as a module's ``forward``, which DDP can wrap."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.policy.local_evaluate_actions(*args, **kwargs)


def _timed_allreduce(state, bucket):  # type: ignore[no-untyped-def]  (DDP checks the annotations: none here)
    """DDP's default all-reduce hook (sum, divide by the world size), counting its bytes and time."""
    t0, buf = time.perf_counter(), bucket.buffer()
    buf.div_(dist.get_world_size())
    fut = dist.all_reduce(buf, async_op=True).get_future()

    def done(f: torch.futures.Future) -> torch.Tensor:
        COMM.add("policy", buf.numel() * buf.element_size(), time.perf_counter() - t0)
        return f.value()[0]

    return fut.then(done)


def data_parallel(policy: nn.Module, device: torch.device) -> DistributedDataParallel:
    """Make ``policy`` (an :class:`~agents.policies.FixedStdMixin` actor-critic) data-parallel over the default
    process group; returns the DDP module it now trains through.

    :raises RuntimeError: no process group is initialised.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("data_parallel needs an initialised process group (torchrun, or torch.distributed."
                           "init_process_group)")
    ddp = DistributedDataParallel(_EvaluateActions(policy), device_ids=[device.index] if device.type == "cuda" else None,
                                  forward_sync_buffers=False, gradient_as_bucket_view=True)
    ddp.register_comm_hook(None, _timed_allreduce)
    object.__setattr__(policy, "_data_parallel", ddp)  # not a submodule: the policy's state_dict is unchanged
    return ddp
