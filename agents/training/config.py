"""The configuration of a training run: :class:`TrainConfig`, its checks, presets and what may change on resume.

Fields are grouped by the step of Algorithm 1 they configure; a ``# [group]`` line opens each group, the ``#:``
comment after a field is its help, and ``python experiments/ppo_adversarial.py --help`` shows the same groups
(:data:`GROUPS`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from adanat_env.config import field_groups
from adanat_env.embedded import ASSET_DIR
from adanat_env.envs import ENV_IDS, TEXT_ENV_IDS
from adanat_env.envs.registration import CC3M_DIR_ENV, IMAGENET_DIR_ENV
from adanat_env.inputs import InputError
from rewards.adversarial import REWARD_KINDS
from rewards.discriminator import DISCRIMINATORS

from ..data_parallel import DATA_PARALLEL_ALGOS
from ..registry import ALGOS, DEVICE_BUFFER_ALGOS, POLICIES
from .builders import METRICS, REWARDS

__all__ = ["TrainConfig", "GROUPS", "CHOICES", "PRESETS", "RESUMABLE", "LEGACY_DEFAULTS", "RETIRED", "saved_options"]


@dataclass
class TrainConfig:
    """Every option of a training run (the CLI's ``--kebab-case`` flags; ``#:`` comments are their help)."""

    # [generator] the frozen NAT, its decoding process and where it runs
    env: str = "AdaNAT-FashionMNIST-v0"  #: registered env id
    steps: int = 4  #: T, decoding steps (T_max with --adaptive-steps)
    adaptive_steps: bool = False  #: the stop action: every sample chooses its own step count in [1, T_max = --steps] (ppo, a2c, trpo)
    residual: str = "heuristic"  #: action residual: "heuristic" (zero action = heuristic schedule) or "none" (official heu=0)
    batch_size: int = 256  #: generations run in parallel (the vector env's num_envs)
    nat_dir: str = ""  #: your own NAT, a directory written by experiments/train_nat.py ("" = the env's)
    tokenizer_dir: str = ""  #: its tokenizer, a directory written by experiments/train_tokenizer.py ("" = the env's)
    weights: str = "official"  #: AdaNAT-ImageNet256-v0 / AdaNAT-CC3M256-v0: "official" checkpoints or "random" (smoke tests, benchmarks)
    nat_checkpoint: str = ""  #: AdaNAT-ImageNet256-v0 / AdaNAT-CC3M256-v0: official nnet_ema.pth ("" = in $ADANAT_IMAGENET_DIR / $ADANAT_CC3M_DIR)
    tokenizer_checkpoint: str = ""  #: the same ids: official vqgan_jax_strongaug.ckpt ("" = in that directory)
    device: str = "auto"  #: "auto", "cpu", "cuda" or "cuda:N"
    amp: str = "auto"  #: generator autocast: "auto" (bf16 where the device multiplies it natively: a CUDA GPU, a CPU with AVX512-BF16 or AMX; else float32: emulated bf16 is ~7x slower on an AVX2 CPU), "bf16", "fp16" or "none"
    obs_dtype: str = "float32"  #: observation features "float32" or "float16" (halves the rollout buffer)
    seed: int = 0  #: seed of everything

    # [data] the real images: the discriminator's, the validation reference's and the test split's
    data_dir: str = ""  #: real images: IDX files or an image folder (train/<class>/..., test/ or val/); "" = $ADANAT_DATA_DIR or the Debian Fashion-MNIST (ImageNet: $ADANAT_IMAGENET_DIR/train)
    prompts: str = ""  #: text envs: a prompt file of the NAT's text encoder (python -m adanat_env.prompts; with --captions its prompts are tied to the images of --data-dir) ("" = the one beside the NAT)
    data_workers: int = 4  #: image folders: decoding worker processes (0 = in the main process)
    val_count: int = 10000  #: train images held out (never shown to the discriminator) as the validation reference
    d_real_count: int = 12000  #: real train images the discriminator sees (0 = all)

    # [policy] the generation policy, its reward and its algorithm (rollout + update)
    algo: str = "ppo"  #: algorithm, a key of agents.registry.ALGOS
    policy: str = "adaptive"  #: "adaptive" (features + step), "step-only" (one schedule for all samples), "class-step" (one schedule per class) or "confidence" (step-only plus a per-step response to the canvas's token confidence)
    reward: str = "adversarial"  #: a key of agents.training.builders.REWARDS: "adversarial", "fid" (batch FID, jackknife-attributed) or "prm" (classifier stand-in)
    sample_credit: str = ""  #: split credit (rewards/sample_credit.py): the reward credits the schedule all samples share, and each sample's jackknife share of a batch FID in this feature space credits its departure from it: "classifier:DIR" (another classifier of the data, experiments/train_classifier.py --seed 1), "efficientnet-lite0", or "" (the reward credits both); needs a fixed step count
    sample_credit_pool: int = 2048  #: --sample-credit: the ranking's FID is over each new batch plus this many earlier generations (0 = the batch alone)
    nfe_cost: float = 0.0  #: compute-aware reward: lambda charged per NAT evaluation (= step) a sample used, subtracted from its terminal reward
    iterations: int = 36  #: policy updates
    episodes: int = 512  #: generations per iteration (a multiple of batch_size)
    lr: float = 3e-3  #: policy learning rate (Adam; official 1e-5 over 1000 updates of 4096 trajectories; 3e-3 moves the schedule within 36 updates of 512)
    epochs: int = 5  #: PPO epochs per update (official K_epochs 5)
    minibatch: int = 512  #: PPO minibatch (transitions)
    clip_range: float = 0.2  #: PPO clip (official eps_clip)
    kl_coef: float = 0.0  #: PPO / A2C: weight of KL(policy || heuristic schedule with the same std) in the loss (0 = none, as official)
    std_init: float = 0.6  #: exploration std at the start (official 0.6)
    std_decay_at: tuple[int, ...] = (12,)  #: iterations at which the std drops by std_rate (official 500 of 1000)
    std_rate: float = 0.0  #: std drop (official 0.3; 0 = the std is held: halving it halves PPO's step under the same clip)
    std_min: float = 0.1  #: std floor (official 0.1)
    stop_std: float = 0.0  #: --adaptive-steps: exploration std of the stop action, held fixed (0 = the other components' std and schedule)
    rollout_buffer: str = "auto"  #: "device" (observations stay on the device: ppo, a2c, trpo), "host" (SB3's) or "auto" (device on CUDA)
    init_from: str = ""  #: start the policy (actor and critic) from another run's reported policy (its run directory or checkpoint.pt, where {seed} stands for this run's seed; the selected iterate with its --select best): same architecture; a fixed-T run's weights start a stop-action policy, whose stop output starts at zero as in a fresh one; a step-only run's start a confidence policy's shared schedule, its per-sample response at zero, or a class-step policy, its class table at zero ("" = the zero-initialised heuristic policy)
    hold_shared: bool = False  #: --policy confidence: hold its shared schedule (the step path, its action-head columns and bias) fixed and train only the per-sample response to the canvas's confidence (with --init-from a step-only run: the per-sample part learns on a trained schedule)
    hold_sample: bool = False  #: --policy confidence: hold its per-sample response at its start (zero from a step-only run or a fresh policy), so the actor is a step-only schedule beside a critic that reads the canvas's confidence: the ablation of what the per-sample response itself buys

    # [discriminator] the adversarial reward's discriminator and when it trains (--reward adversarial)
    discriminator: str = "projected-nat"  #: a key of rewards.discriminator.DISCRIMINATORS ("projected-nat": heads over the frozen generator's own features of the image; "projected-efficientnet": over ImageNet-pretrained EfficientNet-Lite0, the stand-in for the paper's DINO; "conv": from scratch)
    d_reward: str = "jackknife"  #: reward from the discriminator: "jackknife" (the same-class minibatch-std group's mean logit, jackknife-attributed: a sample pays for crowding its group; needs --d-mbstd > 0 with --d-mbstd-by-label 1) or "sigmoid" (official)
    d_fakes: str = "rollout"  #: the discriminator's fakes: "rollout" (the rollout's own final images, right after it: nothing generated for the discriminator, which lags the policy by one update; --d-epochs / --d-batch-size unused) or "fresh" (official: --d-epochs batches of --d-batch-size generated by the updated policy before each rollout)
    d_lr: float = 1e-3  #: discriminator Adam learning rate (official 1e-4; betas (0.5, 0.999))
    d_loss: str = "bce"  #: "bce" (official) or "hinge"
    d_warmup: int = 60  #: discriminator updates on fresh images of the initial policy before the first rollout
    d_updates: int = 10  #: discriminator updates per iteration, on the rollout's images (--d-fakes rollout) or on the fresh ones (official = d_epochs)
    d_minibatch: int = 128  #: fake (and real) images per discriminator update
    d_epochs: int = 2  #: fresh batches generated for the discriminator's warm-up and, with --d-fakes fresh, after each policy update (official D_epochs 5)
    d_batch_size: int = 256  #: size of each fresh batch (official 128)
    d_augment: int = 2  #: random translation (px) during discriminator training
    d_sn: int = 0  #: spectral normalisation in the discriminator (1) or not (0)
    d_mbstd: int = 16  #: minibatch-std group size in the projected heads (0 = none: rewards strictly per sample)
    d_mbstd_by_label: int = 1  #: minibatch-std groups of same-class samples (1) or strided, class-mixed groups (0)
    d_width: int = 32  #: first-layer width of the "conv" discriminator

    # [evaluation] validation during training, the reported policy and the final test evaluation
    metric: str = "classifier"  #: feature space of FID / KID: "classifier", "efficientnet-lite0" or "inception"
    classifier_dir: str = ""  #: the data set's classifier (experiments/train_classifier.py): metric, class accuracy, PRM ("" = the shipped Fashion-MNIST one)
    curve_every: int = 3  #: iterations between validation FIDs for the training curve (and for --select best) (0 = never)
    curve_samples: int = 2000  #: samples of those validation FIDs (against held-out train images, never test)
    select: str = "last"  #: policy evaluated at the end: "last" (the trained policy) or "best" (lowest validation FID: a best-of-N on a noisy estimate, biased low)
    judge: str = "auto"  #: second feature space of the final evaluation, read by neither the reward nor the selection: "auto" (the shipped judge classifier for the embedded Fashion-MNIST data, none elsewhere), "none", "classifier:DIR" (another classifier of the data: train_classifier.py --arch resnet), "efficientnet-lite0" or "inception"
    eval_samples: int = 5000  #: samples per schedule in the final evaluation
    fid_stats: str = ""  #: test reference as an .npz of mu / sigma (official fid_stats_imagenet256_guided_diffusion.npz format; FID only); "" = computed from the test split
    inception_weights: str = ""  #: local pt_inception-2015-12-05-6726825d.pth for --metric inception
    clip_dir: str = ""  #: text envs: a local CLIP model (transformers format) for the CLIP score of every schedule's samples against their prompts ("" = none)

    def validate(self) -> None:
        """Check every option before any work.

        :raises InputError: naming the option, the bad value and the valid ones (or the fix).
        """
        for name, valid in CHOICES.items():
            if getattr(self, name) not in valid:
                raise InputError(f"--{_flag(name)} must be one of {', '.join(map(str, valid))}; got {getattr(self, name)!r}")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise InputError(f"--device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        for name in _POSITIVE + _NONNEGATIVE:
            low = 1 if name in _POSITIVE else 0
            if getattr(self, name) < low:
                raise InputError(f"--{_flag(name)} must be >= {low}, got {getattr(self, name)}")
        for name in ("lr", "d_lr", "clip_range", "std_init", "std_min"):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise InputError(f"--{_flag(name)} must be a finite number > 0, got {getattr(self, name)}")
        for name in ("kl_coef", "std_rate", "nfe_cost", "stop_std"):
            if not (getattr(self, name) >= 0 and math.isfinite(getattr(self, name))):
                raise InputError(f"--{_flag(name)} must be a finite number >= 0, got {getattr(self, name)}")
        actor_critic = ("ppo", "a2c", "trpo")
        if self.policy != "adaptive" and self.algo not in actor_critic:
            raise InputError(f"--policy {self.policy} needs an actor-critic algorithm (ppo, a2c, trpo); "
                             f"--algo {self.algo} has its own policy")
        if self.adaptive_steps and self.algo not in actor_critic:
            raise InputError(f"--adaptive-steps 1 needs ppo, a2c or trpo; got --algo {self.algo}")
        if self.sample_credit:
            space, _, where = self.sample_credit.partition(":")
            if space not in ("classifier", "efficientnet-lite0") or (space == "classifier") != bool(where):
                raise InputError(f"--sample-credit must be classifier:DIR (a classifier other than the metric's) or "
                                 f"efficientnet-lite0; got {self.sample_credit!r}")
            if space == "classifier":
                d = Path(where).expanduser()
                if not (d / "classifier.json").is_file():
                    raise InputError(f"--sample-credit {self.sample_credit}: no classifier in '{d}'; train a second "
                                     f"one with 'python experiments/train_classifier.py --seed 1 --out {d}'")
                if d.resolve() == Path(self.classifier_dir or ASSET_DIR).expanduser().resolve():
                    raise InputError(f"--sample-credit {self.sample_credit} is the metric's own classifier: a ranking "
                                     "in the metric's feature space fits the metric (docs/results.md); train another "
                                     "with 'python experiments/train_classifier.py --seed 1 --out DIR'")
            elif space == self.metric:
                raise InputError(f"--sample-credit {space} is the metric's feature space (--metric {self.metric}): a "
                                 "ranking in it fits the metric; use classifier:DIR (a second classifier of the data)")
            if self.adaptive_steps:
                raise InputError("--sample-credit needs a fixed step count: drop --adaptive-steps 1")
            if self.batch_size <= 1 + 4 * self.steps:
                raise InputError(f"--sample-credit fits the reward on every step's 4 actions: it needs --batch-size "
                                 f"above {1 + 4 * self.steps} (per rank), got {self.batch_size}")
        if self.hold_shared and self.policy != "confidence":
            raise InputError(f"--hold-shared 1 holds the confidence policy's shared schedule; it needs --policy "
                             f"confidence, got --policy {self.policy}")
        if self.hold_sample and self.policy != "confidence":
            raise InputError(f"--hold-sample 1 holds the confidence policy's per-sample response; it needs --policy "
                             f"confidence, got --policy {self.policy}")
        if self.hold_sample and self.hold_shared:
            raise InputError("--hold-shared 1 and --hold-sample 1 together would hold every weight of the actor: "
                             "choose one")
        if self.stop_std and not self.adaptive_steps:
            raise InputError("--stop-std needs --adaptive-steps 1")
        if self.rollout_buffer == "device" and self.algo not in DEVICE_BUFFER_ALGOS:
            raise InputError(f"--rollout-buffer device needs {', '.join(DEVICE_BUFFER_ALGOS)}; got --algo {self.algo}")
        if self.episodes % self.batch_size:
            raise InputError(f"--episodes ({self.episodes}) must be a multiple of --batch-size ({self.batch_size})")
        if self.env == "AdaNAT-ImageNet256-v0" and not (self.data_dir or os.environ.get(IMAGENET_DIR_ENV)):
            raise InputError(f"training on {self.env} needs real images: pass --data-dir with the ImageNet train "
                             f"folder (<dir>/train/<wnid>/*.JPEG, or the class folders themselves) or set "
                             f"${IMAGENET_DIR_ENV} (its train/ is used)")
        own_generator = bool(self.nat_dir or self.env not in ("AdaNAT-FashionMNIST-v0", "AdaNAT-FashionMNIST-T2I-v0"))
        if own_generator and not self.classifier_dir and (self.metric == "classifier" or self.reward == "prm"):
            raise InputError(
                "with your own generator the metric's classifier must come from its data: train it with "
                "'python experiments/train_classifier.py --data-dir DATA --out CLS' and pass --classifier-dir CLS "
                "(or use --metric efficientnet-lite0 / inception; the PRM reward needs the classifier)")
        for name in ("prompts", "clip_dir"):
            if getattr(self, name) and self.env not in TEXT_ENV_IDS:
                raise InputError(f"--{_flag(name)} is for a text-to-image env ({', '.join(TEXT_ENV_IDS)}), not --env "
                                 f"{self.env}")
        if self.env == "AdaNAT-CC3M256-v0" and not (self.data_dir or os.environ.get(CC3M_DIR_ENV)):
            raise InputError(f"training on {self.env} needs captioned images: pass --data-dir with the image folder "
                             f"(or set ${CC3M_DIR_ENV}) and --prompts with their captions' CLIP states (python -m "
                             "adanat_env.prompts --captions CAPTIONS.json --encoder CLIP --out P.safetensors)")
        self._check_judge()
        if self.metric == "inception" and not self.inception_weights:
            raise InputError("--metric inception needs --inception-weights (the local pt_inception-2015-12-05-6726825d"
                             ".pth; nothing is downloaded)")
        if (self.reward == "adversarial" and self.d_reward == "jackknife"
                and (self.discriminator == "conv" or not self.d_mbstd or not self.d_mbstd_by_label)):
            raise InputError("--d-reward jackknife (the default) needs a projected discriminator that scores same-class "
                             "groups (--d-mbstd > 0 --d-mbstd-by-label 1); for the official per-sample reward pass "
                             "--d-reward sigmoid")


    def judge_space(self) -> str:
        """The final evaluation's second feature space (``--judge`` resolved): ``"classifier:DIR"``,
        ``"efficientnet-lite0"``, ``"inception"``, or ``""`` for none. ``auto`` is the shipped judge classifier
        (``adanat_env/assets/fashion_mnist/judge``) for the embedded Fashion-MNIST data and classifier, none elsewhere."""
        if self.judge == "none":
            return ""
        if self.judge == "auto":
            embedded = (self.env in ("AdaNAT-FashionMNIST-v0", "AdaNAT-FashionMNIST-T2I-v0") and not self.data_dir
                        and not self.nat_dir and not self.classifier_dir)
            return f"classifier:{ASSET_DIR / 'judge'}" if embedded and (ASSET_DIR / "judge").is_dir() else ""
        return self.judge

    def _check_judge(self) -> None:
        judge = self.judge_space()
        kind, _, where = judge.partition(":")
        if self.judge not in ("auto", "none") and (kind not in METRICS or (kind == "classifier") != bool(where)):
            raise InputError(f"--judge must be auto, none, classifier:DIR (another classifier of the data), "
                             f"efficientnet-lite0 or inception; got {self.judge!r}")
        if kind == "classifier" and where:
            d = Path(where).expanduser()
            if not (d / "classifier.json").is_file():
                raise InputError(f"--judge {judge}: no classifier in '{d}'; train one of another architecture with "
                                 f"'python experiments/train_classifier.py --arch resnet --seed 1 --out {d}'")
            if self.metric == "classifier" and d.resolve() == Path(self.classifier_dir or ASSET_DIR).expanduser().resolve():
                raise InputError(f"--judge {judge} is the metric's own classifier: a judge must be a second opinion "
                                 "(train one with 'python experiments/train_classifier.py --arch resnet --seed 1 --out DIR')")
            if self.sample_credit and Path(self.sample_credit.partition(":")[2]).expanduser().resolve() == d.resolve():
                raise InputError(f"--judge {judge} ranks the per-sample part (--sample-credit): the reward reads it, so "
                                 "it cannot judge; pass another classifier")
        elif kind and kind == self.metric:
            raise InputError(f"--judge {judge} is the metric's feature space (--metric {self.metric}); choose another "
                             "space or --judge none")
        elif kind == "inception" and not self.inception_weights:
            raise InputError("--judge inception needs --inception-weights (the local pt_inception-2015-12-05-6726825d.pth)")

    def per_rank(self, world: int) -> TrainConfig:
        """The configuration one of ``world`` data-parallel ranks runs: the global sizes of :data:`SPLIT` divided
        evenly (each rank rolls out its share of the episodes in its share of the batch, and takes its share of
        every minibatch); everything else as given.

        :raises InputError: a size that does not divide evenly, or an algorithm that is not data-parallel.
        """
        if world == 1:
            return self
        if self.algo not in DATA_PARALLEL_ALGOS:
            raise InputError(f"--algo {self.algo} does not train data-parallel; over several ranks use "
                             f"{' or '.join(DATA_PARALLEL_ALGOS)}, or run it in one process (python, not torchrun)")
        uneven = [f"--{_flag(k)} {getattr(self, k)}" for k in SPLIT if getattr(self, k) % world]
        if uneven:
            raise InputError(f"{', '.join(uneven)} {'does' if len(uneven) == 1 else 'do'} not split evenly over {world} "
                             f"ranks: these sizes are global and "
                             f"each rank takes an equal share; use multiples of {world} (or another --nproc-per-node)")
        local = replace(self, **{k: getattr(self, k) // world for k in SPLIT})
        local.validate()
        return local


def _flag(name: str) -> str:
    return name.replace("_", "-")


_POSITIVE = ("steps", "iterations", "batch_size", "episodes", "epochs", "minibatch", "d_batch_size", "d_minibatch",
             "eval_samples", "curve_samples")
_NONNEGATIVE = ("sample_credit_pool", "d_width", "d_mbstd", "d_epochs", "d_updates", "d_augment", "d_warmup",
                "d_real_count", "curve_every", "val_count", "seed", "data_workers")

#: Global sizes that data-parallel ranks split evenly (:meth:`TrainConfig.per_rank`).
SPLIT = ("batch_size", "episodes", "minibatch", "d_minibatch", "d_batch_size")

#: ``--help`` groups: title -> the fields under it, in the order of :class:`TrainConfig`.
GROUPS: dict[str, list[str]] = field_groups(TrainConfig)

#: Options with a closed set of values: name -> the valid values.
CHOICES: dict[str, tuple[Any, ...]] = {
    "env": tuple(ENV_IDS), "algo": tuple(ALGOS), "policy": tuple(POLICIES), "reward": tuple(REWARDS),
    "residual": ("heuristic", "none"), "discriminator": tuple(DISCRIMINATORS), "d_loss": ("bce", "hinge"),
    "d_fakes": ("fresh", "rollout"), "d_reward": REWARD_KINDS, "metric": METRICS, "select": ("best", "last"),
    "amp": ("auto", "bf16", "fp16", "none"), "d_sn": (0, 1), "d_mbstd_by_label": (0, 1), "weights": ("official", "random"),
    "obs_dtype": ("float32", "float16"), "rollout_buffer": ("auto", "device", "host")}

#: Named sets of defaults (``--preset NAME``); options given with it still win.
PRESETS: dict[str, dict[str, Any]] = {
    # The official ImageNet-256 settings (facts: train.py defaults and README) on one GPU: 4096 trajectories per
    # update in chunks of 128, T = 8, 1000 updates, lr 1e-5, 5 full-batch epochs (minibatch = 4096 x 8), no KL,
    # std 0.6 -> 0.3 at update 500, heu = 0 (residual "none"); discriminator lr 1e-4, 5 fresh batches of 128 and
    # 5 updates per policy update, no warm-up, spectral norm, no minibatch-std. Differences, because they do not
    # install offline: the discriminator's frozen backbone is EfficientNet-Lite0 (not DINO ViT-S; the nearest
    # ImageNet-pretrained network here, so the preset names it), and FID needs the local Inception weights
    # (--inception-weights) and --fid-stats. float16 observations: the rollout buffer of 32,768 steps x 256 x 768
    # features is 12 GiB (24 GiB at float32).
    "official-imagenet": dict(
        env="AdaNAT-ImageNet256-v0", discriminator="projected-efficientnet", steps=8, batch_size=128, episodes=4096,
        iterations=1000, residual="none", lr=1e-5, epochs=5, minibatch=32768, clip_range=0.2, kl_coef=0.0,
        std_init=0.6, std_decay_at=(500,), std_rate=0.3, std_min=0.1, d_lr=1e-4, d_fakes="fresh", d_epochs=5,
        d_batch_size=128, d_updates=5, d_minibatch=128, d_warmup=0, d_sn=1, d_mbstd=0, d_reward="sigmoid",
        d_real_count=4096, d_augment=0, metric="inception", eval_samples=50000, curve_every=25, curve_samples=5000,
        val_count=10000, obs_dtype="float16", amp="bf16"),
}

#: Options whose default changed: a saved configuration (``config.json``, a checkpoint) older than the option
#: lacks it and ran with this value, not today's default.
LEGACY_DEFAULTS: dict[str, Any] = {"d_reward": "sigmoid", "d_fakes": "fresh", "amp": "bf16", "select": "best"}

#: Options retired in 0.2.0 (they did not help; docs/results.md keeps their numbers) -> the value that meant "off".
#: A saved configuration with the "off" value loads without them; any other value is refused by name.
RETIRED: dict[str, Any] = {"noise_group": 0, "freeze": "", "d_backbone_dir": "", "d_witness_reals": 1024,
                           "d_replay": 0, "d_r1": 0.0, "d_real": "raw"}
_RETIRED_VALUES = {"d_reward": ("logit", "witness"),
                   "discriminator": ("set-efficientnet", "projected-classifier", "projected-tokenizer")}


def saved_options(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved configuration's options with the values it ran with: lists as tuples, the :data:`LEGACY_DEFAULTS`
    of options it predates (other missing options ran with their current default), retired options dropped.

    :raises InputError: it used a retired option or value (naming it and the version that still runs it), or an
        option this version does not know (a newer version's).
    """
    out = {**LEGACY_DEFAULTS, **{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}}
    used = [f"--{_flag(k)} {out[k]}" for k, off in RETIRED.items() if k in out and out[k] != off]
    used += [f"--{_flag(k)} {out[k]}" for k, values in _RETIRED_VALUES.items() if out.get(k) in values]
    if used:
        raise InputError(f"this run used {', '.join(used)}, retired in adanat-gym 0.2.0 (it did not help: "
                         "docs/results.md, 'What did not work'); continue or evaluate it with version 0.1.0 "
                         "(git checkout 0ba36bb)")
    for k in RETIRED:
        out.pop(k, None)
    unknown = sorted(set(out) - {f.name for f in fields(TrainConfig)} - {"command"})
    if unknown:
        raise InputError(f"the saved configuration has options this version does not know ({', '.join(unknown)}): "
                         "it was written by a newer adanat-gym; upgrade to read it")
    out.pop("command", None)
    return out


#: Options that may change when resuming: the run's length and evaluation, the recovery options that the
#: divergence errors advise (learning rates), and the evaluation's files (``--fid-stats``, ``--inception-weights``:
#: a file moved since the start). Changes are recorded in the checkpoint and ``history.json``.
RESUMABLE = ("iterations", "device", "eval_samples", "curve_every", "curve_samples", "select", "judge", "lr", "d_lr",
             "fid_stats", "inception_weights")
