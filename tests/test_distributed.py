"""Data-parallel training over torch.distributed: two gloo processes on CPU (tests/distributed_worker.py) run the
library Trainer under a process group, as torchrun's ranks do."""

from __future__ import annotations

import json
import multiprocessing as mp
import socket
from dataclasses import replace

import pytest

from adanat_env.data import DEFAULT_DATA_DIR
from adanat_env.distributed import Ranks, available_cpus
from adanat_env.inputs import InputError
from agents.training import Trainer

from . import distributed_worker as worker

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists(),
                                reason="Fashion-MNIST package not installed (real images for the discriminator)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes: 15 s on 2 cores
def test_two_gloo_ranks_train_identically_resume_exactly_evaluate_as_one_and_stop_together(tmp_path):
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=worker.run, args=(r, 2, port, str(tmp_path))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    hung = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        p.kill()
    assert not hung, "a rank hung"
    res = [json.loads((tmp_path / f"result_{r}.json").read_text()) for r in range(2)]

    assert res[0]["threads"] == res[1]["threads"] == max(1, available_cpus() // 2)  # the cores shared out
    for r in res:  # the uneven split was refused before anything was written
        assert "--batch-size 9 does not split evenly over 2 ranks" in r["uneven"]
    assert not (tmp_path / "uneven").exists() or not any((tmp_path / "uneven").iterdir())
    # bit-identical weights and optimizer states on both ranks after 2 iterations, and after a resume
    assert res[0]["digest"] == res[1]["digest"]
    assert res[0]["resumed_digest"] == res[1]["resumed_digest"] == res[0]["digest"]
    history = json.loads((tmp_path / "full" / "history.json").read_text())
    assert [h["generations"] for h in history] == [16, 32] and all("comm_policy_mib" in h for h in history)
    # the evaluation gathered over 2 ranks is the single-process evaluation of the same samples
    single = worker.evaluation(Trainer(worker.TINY, None, log=lambda _: None).generator, None)
    assert res[0]["eval"] == res[1]["eval"] == single
    # rank 1 ended: rank 0 stopped with an error within the collective timeout, and both exited non-zero
    assert res[0]["after_failure"] != "no error" and res[0]["after_failure_s"] < 60
    assert [p.exitcode for p in procs] == [1, 1]
    # a resume at another world size is refused, naming the launch line
    with pytest.raises(InputError, match="trained on 2 rank.*torchrun --nproc-per-node 2"):
        Trainer.resume(tmp_path / "full", log=lambda _: None)


def test_global_sizes_split_evenly_or_are_refused():
    local = worker.TINY.per_rank(2)
    assert (local.batch_size, local.episodes, local.minibatch, local.d_minibatch, local.d_batch_size) == (4, 8, 8, 4, 4)
    assert worker.TINY.per_rank(1) is worker.TINY
    with pytest.raises(InputError, match="--minibatch 16, --d-minibatch 8 do not split evenly over 3 ranks"):
        replace(worker.TINY, batch_size=9, episodes=18, d_batch_size=9).per_rank(3)
    with pytest.raises(InputError, match="--algo sac does not train data-parallel"):
        replace(worker.TINY, algo="sac").per_rank(2)


def test_ranks_share_batches_in_order():
    shares = [list(Ranks(r, 3).share(10)) for r in range(3)]
    assert shares == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [list(Ranks(r, 4).share(2)) for r in range(4)] == [[0], [1], [], []]
    assert Ranks(0, 2).rank_seed(7) == 7 and Ranks(1, 2).rank_seed(7) != 7
    assert not Ranks().distributed and Ranks().gather is not None


TINY_CLI = ("--steps 2 --batch-size 8 --episodes 16 --minibatch 16 --epochs 1 --d-epochs 1 --d-batch-size 8 "
            "--d-updates 2 --d-minibatch 8 --d-warmup 1 --d-real-count 500 --val-count 200 --curve-every 1 "
            "--curve-samples 40 --eval-samples 24 --iterations 1 --device cpu").split()


@pytest.mark.slow
def test_torchrun_launches_the_main_job_and_refuses_an_uneven_split_in_one_line(tmp_path):
    import subprocess
    import sys

    def torchrun(*options: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                               str(_free_port()), "experiments/ppo_adversarial.py", *TINY_CLI, *options],
                              capture_output=True, text=True, timeout=300)

    done = torchrun("--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["generations"] == 16
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if p.suffix == ".png")[:1] == ["grid_cosine.png"]

    bad = torchrun("--batch-size", "9", "--episodes", "18", "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0
    lines = [ln for ln in bad.stderr.splitlines() if ln.startswith("error (rank")]
    assert len(lines) == 1 and lines[0].startswith("error (rank 0): --batch-size 9 does not split evenly over 2")
    assert not (tmp_path / "bad" / "config.json").exists()
