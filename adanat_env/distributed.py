"""Data parallelism over ``torch.distributed``: which rank this process is, its share of a job, and the few
collectives a run needs (gather rows, average numbers, broadcast a result, average gradients), each counted in
:data:`COMM` (bytes sent and seconds spent, by phase).

Without an initialised process group every helper is the identity of a world of one rank: nothing changes for
single-process code. :func:`init_from_env` starts the group from ``torchrun``'s environment variables (NCCL on
``cuda:LOCAL_RANK``, gloo on CPU, with a collective timeout so a lost rank ends in an error, not a hang).
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist

__all__ = ["COMM", "CommStats", "Ranks", "TIMEOUT_ENV", "available_cpus", "exit_process", "init_from_env",
           "launched_by_torchrun"]

#: Seconds a collective may wait for the other ranks before it raises (default 1800: a rank 0 that computes the
#: test split's reference statistics alone keeps the others waiting that long at most).
TIMEOUT_ENV = "ADANAT_DIST_TIMEOUT_S"


class CommStats:
    """Bytes and seconds of this process's collectives, by phase (``policy``, ``discriminator``, ``metrics``,
    ``checkpoint``); the collectives of pickled objects count their seconds only."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, phase: str, nbytes: int | None, seconds: float) -> None:
        if nbytes is not None:
            self.bytes[phase] += int(nbytes)
        self.seconds[phase] += float(seconds)

    def pop(self) -> dict[str, float]:
        """``comm_<phase>_mib`` (tensor collectives) and ``comm_<phase>_s`` since the last call, then reset."""
        out = {}
        for phase in sorted(self.seconds):
            if phase in self.bytes:
                out[f"comm_{phase}_mib"] = round(self.bytes[phase] / 2**20, 4)
            out[f"comm_{phase}_s"] = round(self.seconds[phase], 4)
        self.bytes.clear()
        self.seconds.clear()
        return out


#: This process's communication, read (and reset) by the trainer after every iteration.
COMM = CommStats()


def available_cpus() -> int:
    """The CPU cores this process may run on (its affinity where the platform tells it, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def launched_by_torchrun() -> bool:
    """Whether this process is one of torchrun's workers (``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def init_from_env(device: str = "auto") -> torch.device:
    """Start the default process group from torchrun's variables (if not started yet) and return this rank's device:
    ``cuda:LOCAL_RANK`` with NCCL where CUDA is asked for or available, else CPU with gloo, whose intra-op threads
    are set to the cores divided by the ranks on this node (``LOCAL_WORLD_SIZE``) so they do not oversubscribe them.

    :param device: the run's ``--device`` (``auto``, ``cpu``, ``cuda``; ``cuda:N`` is refused: torchrun picks it).
    :raises ValueError: ``cuda:N`` given, or CUDA asked for but not available.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device.startswith("cuda:"):
        raise ValueError(f"--device {device}: under torchrun each rank uses cuda:LOCAL_RANK; pass --device cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda but CUDA is not available: pass --device cpu (gloo)")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1)))
        torch.set_num_threads(max(1, available_cpus() // local_world))
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, 1800)))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timeout,
                                device_id=dev if use_cuda else None)
    return dev


def exit_process(code: int) -> NoReturn:
    """End this process with exit status ``code``. Inside a process group the process leaves at once (``os._exit``,
    after flushing stdout and stderr): once a collective has failed, the group's C++ threads can abort the
    interpreter's ordinary teardown (``terminate called without an active exception``, status -6 instead of
    ``code``), and torchrun reads the status. Without a group this is ``sys.exit(code)``."""
    if not dist.is_initialized():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


@dataclass(frozen=True)
class Ranks:
    """This process's place in the default process group (a world of one without one).

    :param rank: this process's rank. :param world: the number of ranks.
    """

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Ranks:
        """The default process group's rank and size, or ``Ranks(0, 1)`` without one."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, count: int) -> range:
        """This rank's contiguous block of ``count`` items (batches), the first ranks taking one more where
        ``count`` does not divide evenly; rank order is item order."""
        base, extra = divmod(count, self.world)
        start = self.rank * base + min(self.rank, extra)
        return range(start, start + base + (self.rank < extra))

    def rank_seed(self, seed: int) -> int:
        """A seed for this rank's own random stream: ``seed`` itself on rank 0 (a world of one runs exactly as a
        single process), distinct streams on the others."""
        return int(seed) + 1_000_033 * self.rank

    # ------------------------------------------------------------------------------------------ collectives
    @staticmethod
    def _device() -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

    def gather(self, x: torch.Tensor, phase: str = "metrics") -> torch.Tensor:
        """Every rank's ``x`` (same dimensions and trailing shape, any number of rows; a rank without rows may pass
        an empty tensor of another trailing shape) concatenated in rank order, on every rank, on ``x``'s device."""
        if not self.distributed:
            return x
        t0, dev = time.perf_counter(), self._device()
        shape = torch.tensor(list(x.shape), device=dev)  # a rank with no rows may not know the trailing shape
        shapes = [torch.zeros_like(shape) for _ in range(self.world)]
        dist.all_gather(shapes, shape)
        rows = [int(s[0]) for s in shapes]
        if max(rows) == 0:
            return x
        trailing = next(tuple(int(v) for v in s[1:]) for s in shapes if int(s[0]) > 0)
        padded = torch.zeros((max(rows), *trailing), dtype=x.dtype, device=dev)
        if x.shape[0]:
            padded[: x.shape[0]] = x.to(dev)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        out = torch.cat([p[:r] for p, r in zip(parts, rows)]).to(x.device)
        COMM.add(phase, padded.numel() * padded.element_size() * (self.world - 1), time.perf_counter() - t0)
        return out

    def mean(self, values: dict[str, float], phase: str = "metrics") -> dict[str, float]:
        """The mean of each number over the ranks (every rank passes the same keys)."""
        if not self.distributed or not values:
            return values
        t0 = time.perf_counter()
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self._device())
        dist.all_reduce(t)
        COMM.add(phase, t.numel() * 8, time.perf_counter() - t0)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def broadcast(self, obj: Any, phase: str = "metrics") -> Any:
        """Rank 0's ``obj`` (any picklable value) on every rank."""
        if not self.distributed:
            return obj
        t0 = time.perf_counter()
        box = [obj if self.main else None]
        dist.broadcast_object_list(box, src=0, device=self._device())
        COMM.add(phase, None, time.perf_counter() - t0)
        return box[0]

    def gather_objects(self, obj: Any, phase: str = "metrics") -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        t0 = time.perf_counter()
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        COMM.add(phase, None, time.perf_counter() - t0)
        return out

    def average_gradients(self, params: list[torch.nn.Parameter], loss: torch.Tensor, phase: str) -> float:
        """Average the gradients of ``params`` over the ranks in one flat all-reduce, together with ``loss``;
        returns the ranks' mean loss, so every rank sees the same non-finite loss and takes the same decision."""
        if not self.distributed:
            return float(loss.detach())
        t0 = time.perf_counter()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([loss.detach().reshape(1).to(grads[0].dtype)] + [g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world)
        offset = 1
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[offset: offset + n].view_as(p).clone()
            offset += n
        COMM.add(phase, flat.numel() * flat.element_size(), time.perf_counter() - t0)
        return float(flat[0])
