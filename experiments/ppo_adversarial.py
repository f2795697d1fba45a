"""AdaNAT training, the main job: learn a generation policy with PPO against a co-trained adversarial reward
(paper Algorithm 1), then compare it with the hand-designed schedules.

    python experiments/ppo_adversarial.py                      # Fashion-MNIST, T = 4, CPU-friendly, seed 0
    python experiments/ppo_adversarial.py --algo a2c --iterations 10 --out runs/a2c
    python experiments/ppo_adversarial.py --resume runs/ppo_adversarial   # continue a stopped run exactly

One iteration = one SB3 ``learn()`` over ``episodes`` generations (``episodes / batch_size`` batches of T
steps), which is: [update the exploration std; co-train the discriminator on fresh generations of the current
policy (from the 2nd iteration on)] -> rollout -> policy update. The env and all RNGs are re-seeded from
(seed, iteration) at the start of every iteration and the checkpoint written after it holds the policy,
its optimizer, the discriminator and its optimizer, the samplers' RNG states and the counters, so a resumed run
ends with the same weights as an uninterrupted one.

Writes to ``--out``: ``checkpoint.pt`` (after every iteration; loads with ``weights_only=True``),
``history.json``, ``metrics.json`` (FID / KID of cosine, heuristic and learned, same samples count),
``grid_{cosine,heuristic,learned}.png``, ``training_curve.png``, ``config.json``, and TensorBoard logs in
``tb/`` when ``tensorboard`` is installed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
from tqdm import tqdm  # noqa: E402

import adanat_env  # noqa: E402,F401  (registers the envs)
from adanat_env.checkpoint import read_checkpoint  # noqa: E402
from adanat_env.sb3 import to_sb3  # noqa: E402
from adanat_env.schedules import heuristic_schedule, maskgit_cosine_schedule  # noqa: E402
from adanat_env.utils import save_grid, seed_everything  # noqa: E402
from adanat_env.wrappers import PooledObservation, VectorTerminalRewardWrapper  # noqa: E402
from agents.generation_policy import SB3GenerationPolicy  # noqa: E402
from agents.callbacks import DiscriminatorCallback, StdScheduleCallback  # noqa: E402
from agents.policies import StdSchedule  # noqa: E402
from agents.registry import ALGOS, make_algo  # noqa: E402
from experiments._cli import command_line, parse_config  # noqa: E402
from rewards.evaluation import evaluate_policy  # noqa: E402

CHECKPOINT_FORMAT = "adanat-train/1"


@dataclass
class Config:
    """Every option of the run (``--kebab-case`` flags)."""

    env: str = "AdaNAT-FashionMNIST-v0"  #: registered env id
    algo: str = "ppo"  #: a key of agents.registry.ALGOS
    policy: str = "adaptive"  #: "adaptive" (features + step) or "step-only" (the non-adaptive variant)
    reward: str = "adversarial"  #: "adversarial", "fid" (batch FID, jackknife-attributed) or "prm" (classifier stand-in)
    steps: int = 4  #: T, decoding steps
    iterations: int = 24  #: policy updates
    batch_size: int = 256  #: generations run in parallel (the vector env's num_envs)
    episodes: int = 512  #: generations per iteration (a multiple of batch_size)
    residual: str = "heuristic"  #: action residual: "heuristic" (zero action = heuristic schedule) or "none" (official heu=0)
    lr: float = 3e-4  #: policy learning rate (Adam; official 1e-5 over 1000 updates of 4096 trajectories)
    epochs: int = 5  #: PPO epochs per update (official K_epochs 5)
    minibatch: int = 512  #: PPO minibatch (transitions)
    clip_range: float = 0.2  #: PPO clip (official eps_clip)
    kl_coef: float = 0.1  #: PPO / A2C: weight of KL(policy || heuristic schedule with the same std) in the loss (0 = none, as official)
    std_init: float = 0.6  #: exploration std at the start (official 0.6)
    std_decay_at: tuple[int, ...] = (12,)  #: iterations at which the std drops by std_rate (official 500 of 1000)
    std_rate: float = 0.3  #: std drop (official 0.3)
    std_min: float = 0.1  #: std floor (official 0.1)
    discriminator: str = "projected-efficientnet"  #: see rewards.discriminator.DISCRIMINATORS and the README
    d_lr: float = 1e-3  #: discriminator Adam learning rate (official 1e-4; betas (0.5, 0.999))
    d_width: int = 32  #: first-layer width of the "conv" discriminator
    d_sn: int = 0  #: spectral normalisation in the discriminator (1) or not (0)
    d_mbstd: int = 16  #: minibatch-std group size in the projected heads (0 = none: rewards strictly per sample)
    d_mbstd_by_label: int = 1  #: minibatch-std groups of same-class samples (1) or strided, class-mixed groups (0)
    d_loss: str = "bce"  #: "bce" (official) or "hinge"
    d_epochs: int = 2  #: fresh batches generated after each policy update (official D_epochs 5)
    d_batch_size: int = 256  #: size of each fresh batch (official 128)
    d_updates: int = 10  #: discriminator updates after each policy update, on those fresh images (official = d_epochs)
    d_minibatch: int = 128  #: fake (and real) images per discriminator update
    d_augment: int = 2  #: random translation (px) during discriminator training
    d_warmup: int = 60  #: discriminator updates on fresh images of the initial policy before the first rollout
    d_real: str = "raw"  #: real images "raw" or "reconstructed" by the frozen tokenizer (see rewards.adversarial)
    d_real_count: int = 12000  #: real train images the discriminator sees (0 = all)
    metric: str = "classifier"  #: feature space of FID / KID ("classifier" or "efficientnet-lite0"; the test reference is computed if not shipped)
    eval_samples: int = 5000  #: samples per schedule in the final evaluation
    curve_every: int = 2  #: iterations between quick FIDs for the training curve (0 = never)
    curve_samples: int = 2000  #: samples of those quick FIDs (against a validation split of train images, not test)
    val_count: int = 10000  #: train images held out (never shown to the discriminator) as the validation reference
    select: str = "best"  #: policy evaluated at the end: "best" (lowest validation FID among the curve points) or "last"
    data_dir: str = ""  #: real images (IDX files); "" = $ADANAT_DATA_DIR or the Debian package's location
    device: str = "auto"  #: "auto", "cpu" or "cuda"
    amp: str = "bf16"  #: generator autocast: "bf16", "fp16" or "none"
    seed: int = 0  #: seed of everything
    out: str = "runs/ppo_adversarial"  #: output directory
    resume: str = ""  #: a checkpoint file or run directory to continue from
    max_iterations_this_call: int = 0  #: stop after this many iterations in this call (0 = run to the end; for tests)


# --------------------------------------------------------------------------------------------------- set-up
def make_env(cfg: Config, device: torch.device):
    spec = ALGOS[cfg.algo.lower()]
    kwargs: dict[str, Any] = dict(num_envs=cfg.batch_size, steps=cfg.steps, device=str(device), residual=cfg.residual,
                                  reward_model=None, action_bound=spec.action_bound)
    if cfg.amp != "none":
        kwargs["amp"] = cfg.amp
    venv = gym.make_vec(cfg.env, vectorization_mode="vector_entry_point", **kwargs)
    return venv, spec


def train_split(cfg: Config) -> tuple[Any, np.ndarray, np.ndarray]:
    """The real train set, split (by a seeded permutation) into the discriminator's images and a validation set."""
    from adanat_env.data import load_idx_dataset

    if cfg.env != "AdaNAT-FashionMNIST-v0" and not cfg.data_dir:
        raise ValueError(f"training needs real images for {cfg.env}; pass --data-dir with IDX files of "
                         "the same image size and classes (only IDX data sets are supported as yet)")
    ds = load_idx_dataset("train", cfg.data_dir or None)
    perm = np.random.default_rng(cfg.seed).permutation(len(ds))
    n_val = min(cfg.val_count, len(ds) // 2)
    val, rest = perm[:n_val], perm[n_val:]
    n = len(rest) if cfg.d_real_count <= 0 else min(cfg.d_real_count, len(rest))
    return ds, rest[:n], val


def real_images(cfg: Config, generator, device: torch.device):
    from rewards.adversarial import RealImages

    ds, idx, _ = train_split(cfg)
    images, labels = ds.images[idx], ds.labels[idx]
    if cfg.d_real == "reconstructed":
        from rewards.adversarial import reconstruct

        images = reconstruct(generator, images)
    elif cfg.d_real != "raw":
        raise ValueError(f"--d-real must be 'raw' or 'reconstructed', got {cfg.d_real!r}")
    return RealImages(images, labels, device, seed=cfg.seed, resolution=generator.image_shape[-1])


def make_reward(cfg: Config, venv, device: torch.device):
    """Wrap the env with the chosen reward; returns (env, wrapper-or-None for adversarial co-training)."""
    gen = venv.unwrapped.generator
    if cfg.reward == "adversarial":
        from rewards.adversarial import AdversarialReward, AdversarialRewardWrapper
        from rewards.discriminator import build_discriminator

        tok = getattr(gen, "tokenizer", None)
        disc = build_discriminator(cfg.discriminator, gen.image_shape, gen.num_classes, tokenizer=tok,
                                   width=cfg.d_width, sn=bool(cfg.d_sn), mbstd=cfg.d_mbstd,
                                   mbstd_by_label=bool(cfg.d_mbstd_by_label))
        reward = AdversarialReward(disc, real_images(cfg, gen, device), lr=cfg.d_lr, loss=cfg.d_loss,
                                   augment=cfg.d_augment, seed=cfg.seed)
        wrapper = AdversarialRewardWrapper(venv, reward, epochs=cfg.d_epochs, batch_size=cfg.d_batch_size,
                                           seed=cfg.seed, updates=cfg.d_updates, minibatch=cfg.d_minibatch)
        return wrapper, wrapper
    if cfg.reward == "fid":
        from rewards.fid_reward import BatchFIDReward
        from rewards.metrics import extract_features, feature_extractor, feature_stats

        fn = feature_extractor(cfg.metric, device)
        real = real_images(cfg, gen, device)
        train_stats = feature_stats(extract_features(fn, real.images.float().div(255.0).split(1000)))
        return VectorTerminalRewardWrapper(venv, BatchFIDReward(fn, train_stats)), None
    if cfg.reward == "prm":
        from rewards.prm import ClassifierReward

        return VectorTerminalRewardWrapper(venv, ClassifierReward(device)), None
    raise ValueError(f"--reward must be adversarial, fid or prm, got {cfg.reward!r}")


def iteration_seed(cfg: Config, it: int) -> int:
    return (cfg.seed * 1_000_003 + it * 7919) % 2**31


# --------------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write never leaves a broken checkpoint)."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoint.pt"
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at '{p}' (a run directory holds 'checkpoint.pt')")
    state = read_checkpoint(p, what="training checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"'{p}' is not a checkpoint of this script (format {CHECKPOINT_FORMAT})")
    return state


def all_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.policy.parameters())


# --------------------------------------------------------------------------------------------------- evaluation
def evaluate_all(cfg: Config, generator, model, out: Path, device: torch.device) -> dict[str, Any]:
    from rewards.classifier import load_classifier
    from rewards.metrics import feature_extractor, load_reference

    fn = feature_extractor(cfg.metric, device)
    if cfg.metric == "classifier" and not cfg.data_dir:
        ref = load_reference()  # shipped: the Fashion-MNIST test split in the classifier's space
    else:  # the real test split in the chosen feature space, computed once and cached in --out
        path = out / f"ref_test_{cfg.metric}.npz"
        if not path.is_file():
            from adanat_env.data import load_idx_dataset, to_model_images
            from rewards.metrics import extract_features, save_reference

            test = load_idx_dataset("test", cfg.data_dir or None)
            images = to_model_images(test.images, generator.image_shape[-1]).to(device)
            save_reference(path, extract_features(fn, images), cfg.metric)
        ref = load_reference(path)
    clf = load_classifier(device=device) if cfg.env == "AdaNAT-FashionMNIST-v0" else None
    policies = {
        "cosine": maskgit_cosine_schedule(cfg.steps),
        "heuristic": heuristic_schedule(cfg.steps),
        "learned": SB3GenerationPolicy(model, cfg.steps, cfg.residual, deterministic=True,
                                       action_bound=ALGOS[cfg.algo.lower()].action_bound),
    }
    results = {}
    for name, pol in policies.items():
        m, first = evaluate_policy(generator, pol, cfg.steps, fn, ref, num_samples=cfg.eval_samples,
                                   seed=cfg.seed + 12345, classifier=clf, progress=True)
        results[name] = m
        save_grid(first[:100], out / f"grid_{name}.png", nrow=10, scale=3)
    return results


def quick_fid(cfg: Config, generator, model, fn, ref) -> tuple[float, torch.Tensor]:
    """FID of the deterministic policy on ``curve_samples`` samples, and the first 100 of them."""
    from rewards.evaluation import sample_images
    from rewards.metrics import extract_features, feature_stats, frechet_distance

    pol = SB3GenerationPolicy(model, cfg.steps, cfg.residual, deterministic=True,
                              action_bound=ALGOS[cfg.algo.lower()].action_bound)
    images, _ = sample_images(generator, pol, cfg.steps, cfg.curve_samples, seed=cfg.seed + 999)
    return frechet_distance(feature_stats(extract_features(fn, images)), ref.stats), images[:100]


def plot_curves(history: list[dict[str, Any]], baselines: dict[str, float], path: Path) -> None:
    """training_curve.png: rollout reward, discriminator accuracy, quick FID (with the baselines' FIDs)."""
    from adanat_env.plotting import Panel, Series, line_panels

    its = [h["iteration"] for h in history]
    col = lambda k: [h.get(k, math.nan) for h in history]  # noqa: E731
    fid = [(h["iteration"], h["fid_quick"]) for h in history if "fid_quick" in h]
    line_panels([
        Panel("mean terminal reward (rollouts)", [Series("reward", its, col("reward_mean"))]),
        Panel("discriminator accuracy", [Series("d_acc", its, col("d_acc"))], ylim=(0.0, 1.0)),
        Panel("validation FID (mean action)", [Series("learned", *zip(*fid))] if fid else [], hlines=baselines),
    ], path)


#: Options that may change when resuming (everything else must match the checkpoint).
RESUME_MUTABLE = {"iterations", "out", "resume", "max_iterations_this_call", "device", "eval_samples", "curve_every",
                  "curve_samples"}


def resumed_config(cfg: Config, saved: dict[str, Any], argv: list[str]) -> Config:
    """The configuration of a resumed run: the checkpoint's, with the options given on the command line.

    :raises ValueError: an option outside :data:`RESUME_MUTABLE` was given with a different value.
    """
    given = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
    norm = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    conflicts = {k: (saved[k], getattr(cfg, k)) for k in given & set(saved)
                 if k not in RESUME_MUTABLE and norm(saved[k]) != norm(getattr(cfg, k))}
    if conflicts:
        raise ValueError(f"--resume: options {conflicts} (checkpoint, given) differ from the checkpoint's; a resumed run "
                         f"must keep its configuration (only {sorted(RESUME_MUTABLE)} may change)")
    merged = {k: (getattr(cfg, k) if k in given or k not in saved else norm(saved[k])) for k in asdict(cfg)}
    merged["resume"], merged["max_iterations_this_call"] = cfg.resume, cfg.max_iterations_this_call  # per call
    if "out" not in given:
        p = Path(cfg.resume)
        merged["out"] = str(p if p.is_dir() else p.parent)
    return Config(**merged)


# --------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) one training job; returns metrics.json's content (or the iteration reached)."""
    cfg = parse_config(Config, argv, __doc__)
    resume_state = load_checkpoint(cfg.resume) if cfg.resume else None
    if resume_state is not None:
        cfg = resumed_config(cfg, resume_state["config"], argv if argv is not None else sys.argv[1:])
    if cfg.algo.lower() not in ALGOS:
        raise ValueError(f"--algo must be one of {', '.join(ALGOS)}, got {cfg.algo!r}")
    if cfg.episodes % cfg.batch_size:
        raise ValueError(f"--episodes ({cfg.episodes}) must be a multiple of --batch-size ({cfg.batch_size})")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    from adanat_env.utils import resolve_device

    device = resolve_device(cfg.device)
    t_start = time.perf_counter()

    venv, spec = make_env(cfg, device)
    generator = venv.unwrapped.generator
    env, adv = make_reward(cfg, venv, device)
    if spec.pooled:
        env = PooledObservation(env)
    sb3_env = to_sb3(env)
    n_steps = cfg.steps * cfg.episodes // cfg.batch_size
    model = make_algo(cfg.algo, sb3_env, lr=cfg.lr, n_steps=n_steps, minibatch=cfg.minibatch, epochs=cfg.epochs,
                      clip_range=cfg.clip_range, seed=cfg.seed, device=str(device), std=cfg.std_init, policy=cfg.policy,
                      kl_coef=cfg.kl_coef)
    std_cb = StdScheduleCallback(StdSchedule(cfg.std_init, tuple(cfg.std_decay_at), cfg.std_rate, cfg.std_min))
    callbacks: list[Any] = [std_cb]
    disc_cb = None
    if adv is not None:
        disc_cb = DiscriminatorCallback(adv, cfg.residual, spec.action_bound)
        callbacks.append(disc_cb)

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    start_it, elapsed_before = 0, 0.0
    if resume_state is not None:
        model.set_parameters(resume_state["model"], exact_match=True, device=device)
        model.num_timesteps = int(resume_state["num_timesteps"])
        model._n_updates = int(resume_state["n_updates"])
        std_cb.load_state_dict(resume_state["std_callback"])
        if adv is not None:
            adv.load_state_dict(resume_state["reward"])
            disc_cb.load_state_dict(resume_state["disc_callback"])
        history = list(resume_state["history"])
        best = dict(resume_state.get("best", {}))
        start_it = int(resume_state["iteration"])
        elapsed_before = float(resume_state["wall_time_s"])
        print(f"resumed from iteration {start_it} ({cfg.resume})")
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "command": command_line(argv)}, indent=2))

    writer = None
    try:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"))
    except ImportError:
        pass
    fid_fn = fid_ref = None
    baselines: dict[str, float] = {}
    if cfg.curve_every > 0:
        from rewards.evaluation import sample_images
        from rewards.metrics import extract_features, feature_extractor, feature_stats, frechet_distance

        fid_fn = feature_extractor(cfg.metric, device)
        ds, _, val_idx = train_split(cfg)
        from adanat_env.data import to_model_images
        from rewards.metrics import ReferenceStats

        val_feats = extract_features(fid_fn, to_model_images(ds.images[val_idx], generator.image_shape[-1]).to(device))
        fid_ref = ReferenceStats(feature_stats(val_feats), val_feats.astype(np.float32), cfg.metric)
        for name, sched in (("cosine", maskgit_cosine_schedule(cfg.steps)), ("heuristic", heuristic_schedule(cfg.steps))):
            imgs, _ = sample_images(generator, sched, cfg.steps, cfg.curve_samples, seed=cfg.seed + 999)
            baselines[name] = frechet_distance(feature_stats(extract_features(fid_fn, imgs)), fid_ref.stats)
        print(f"validation FID ({cfg.curve_samples} samples vs {len(val_idx)} held-out train images) of the baselines: "
              + ", ".join(f"{k} {v:.2f}" for k, v in baselines.items()))

    # Discriminator warm-up on the initial policy (so the first rollout's rewards already mean something)
    if adv is not None and start_it == 0 and cfg.d_warmup > 0:
        seed_everything(iteration_seed(cfg, -1))
        warm = adv.co_train(SB3GenerationPolicy(model, cfg.steps, cfg.residual, deterministic=False,
                                                action_bound=spec.action_bound), updates=cfg.d_warmup)
        print(f"discriminator warm-up ({cfg.d_warmup} updates): " + ", ".join(f"{k} {v:.3f}" for k, v in warm.items()))

    end_it = cfg.iterations if cfg.max_iterations_this_call <= 0 else min(cfg.iterations, start_it + cfg.max_iterations_this_call)
    ckpt_path = out / "checkpoint.pt"
    bar = tqdm(range(start_it, end_it), desc="AdaNAT training", initial=start_it, total=cfg.iterations)
    for it in bar:
        t_it = time.perf_counter()
        seed_everything(iteration_seed(cfg, it))
        sb3_env.seed(iteration_seed(cfg, it))
        model._last_obs = None  # every iteration starts from a freshly seeded batch: resume is exact
        model.learn(total_timesteps=n_steps * cfg.batch_size, reset_num_timesteps=False, callback=callbacks)
        rewards = getattr(getattr(model, "rollout_buffer", None), "rewards", None)
        rec: dict[str, Any] = {"iteration": it + 1, "time_s": round(time.perf_counter() - t_it, 2)}
        if rewards is not None:
            if not np.isfinite(rewards).all():
                raise FloatingPointError("non-finite rewards in the rollout buffer; the last checkpoint is untouched")
            rec["reward_mean"] = float(rewards.sum() / (rewards.size / cfg.steps))
        else:
            rec["reward_mean"] = float(np.mean([e["r"] for e in model.ep_info_buffer])) if model.ep_info_buffer else math.nan
        if std_cb.current is not None:
            rec["action_std"] = std_cb.current
        if disc_cb is not None and disc_cb.last_stats:
            rec.update(disc_cb.last_stats)
        if fid_fn is not None and ((it + 1) % cfg.curve_every == 0 or it + 1 == cfg.iterations):
            rec["fid_quick"], samples = quick_fid(cfg, generator, model, fid_fn, fid_ref)
            if not best or rec["fid_quick"] < best["fid_quick"]:
                best = {"iteration": it + 1, "fid_quick": rec["fid_quick"],
                        "policy": {k: v.detach().clone() for k, v in model.policy.state_dict().items()}}
            if writer is not None:
                from adanat_env.utils import make_grid

                writer.add_image("samples/learned", make_grid(samples.clamp(0, 1), nrow=10), it + 1)
        if not all_finite(model) or (adv is not None and not adv.reward.is_finite()):
            raise FloatingPointError(f"non-finite weights after iteration {it + 1}; not saved (the checkpoint of "
                                     f"iteration {it} in '{ckpt_path}' is intact): lower --lr / --d-lr and resume")
        history.append(rec)
        state = {
            "format": CHECKPOINT_FORMAT, "config": asdict(cfg), "iteration": it + 1, "model": model.get_parameters(),
            "num_timesteps": model.num_timesteps, "n_updates": getattr(model, "_n_updates", 0),
            "std_callback": std_cb.state_dict(), "history": history, "best": best,
            "wall_time_s": elapsed_before + time.perf_counter() - t_start,
        }
        if adv is not None:
            state["reward"] = adv.state_dict()
            state["disc_callback"] = disc_cb.state_dict()
        save_checkpoint(ckpt_path, state)
        if writer is not None:
            for k, v in rec.items():
                if k != "iteration":
                    writer.add_scalar(f"train/{k}", v, it + 1)
        bar.set_postfix({k: f"{rec[k]:.3f}" for k in ("reward_mean", "d_acc", "fid_quick") if k in rec})
    bar.close()
    (out / "history.json").write_text(json.dumps(history, indent=1))
    if end_it < cfg.iterations:
        print(f"stopped after iteration {end_it} of {cfg.iterations}; continue with --resume {out}")
        return {"iteration": end_it}

    selected = cfg.iterations
    if cfg.select == "best" and best:
        model.policy.load_state_dict(best["policy"])
        selected = best["iteration"]
        print(f"selected the policy of iteration {selected} (validation FID {best['fid_quick']:.2f})")
    print(f"evaluating cosine, heuristic and learned on {cfg.eval_samples} samples each ...")
    results = evaluate_all(cfg, generator, model, out, device)
    wall = elapsed_before + time.perf_counter() - t_start
    metrics = {
        "fid": {k: v["fid"] for k, v in results.items()},
        "kid": {k: v["kid_x1e3"] / 1e3 for k, v in results.items()},
        "details": results,
        "steps": cfg.steps, "seed": cfg.seed, "algo": cfg.algo, "policy": cfg.policy, "reward": cfg.reward,
        "iterations": cfg.iterations, "episodes_per_iteration": cfg.episodes, "eval_samples": cfg.eval_samples,
        "metric": cfg.metric, "wall_time_s": round(wall, 1),
        "fid_reduction_vs_cosine": 1 - results["learned"]["fid"] / results["cosine"]["fid"],
        "fid_reduction_vs_heuristic": 1 - results["learned"]["fid"] / results["heuristic"]["fid"],
        "fid_quick_baselines": baselines, "selected_iteration": selected, "select": cfg.select,
        "device": str(device), "torch": torch.__version__, "command": command_line(argv),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_curves(history, baselines, out / "training_curve.png")
    if writer is not None:
        writer.close()
    print(json.dumps({k: metrics[k] for k in ("fid", "kid", "wall_time_s", "fid_reduction_vs_cosine",
                                              "fid_reduction_vs_heuristic")}, indent=2))
    return metrics


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # log lines appear as they happen, also when redirected
    main()
