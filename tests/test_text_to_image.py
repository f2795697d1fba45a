"""Text-to-image (issue #28, parts 1-3): prompt files, the text-conditioned generator behind the same Generator
interface, and the AdaNAT-CC3M256-v0 env (here with a tiny text-conditioned config of the same classes; the
full-size CC3M preset's manifest, checkpoint and forward are in test_models.py / test_checkpoints.py)."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import adanat_env  # noqa: F401  (registers the ids)
from adanat_env.generator import NATGenerator
from adanat_env.inputs import InputError
from adanat_env.models import UViTConfig, load_nat, load_tokenizer
from adanat_env.prompts import encode_prompts, load_prompts, main as prompts_main, save_prompts
from adanat_env.sampler import generate
from adanat_env.schedules import heuristic_schedule

from .conftest import TINY_VQ, assert_vector_env_agrees

TINY_T2I = UViTConfig(img_size=4, codebook_size=32, embed_dim=32, depth=2, num_heads=2, num_classes=0, clip_dim=24,
                      num_clip_tokens=5)
TEXTS = ["a red dress", "a black ankle boot", "a striped shirt"]


@pytest.fixture
def prompt_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    states, pooled = 3 * torch.randn(4, 5, 24, generator=g), torch.randn(4, 16, generator=g)
    return save_prompts(tmp_path / "prompts.safetensors", states[:3], pooled[:3], states[3], pooled[3], TEXTS, "test")


def _generator(prompt_file) -> NATGenerator:
    torch.manual_seed(0)
    bank = load_prompts(prompt_file, tokens=5, dim=24)
    return NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ), prompts=bank.states)


def test_a_prompt_file_round_trips_and_bad_ones_are_named(prompt_file, tmp_path):
    bank = load_prompts(prompt_file)
    assert bank.texts == tuple(TEXTS) and bank.states.shape == (4, 5, 24) and bank.pooled.shape == (4, 16)
    with pytest.raises(InputError, match="holds 5 x 24 token states but the NAT reads 77 x 1280"):
        load_prompts(prompt_file, tokens=77, dim=1280)
    (tmp_path / "x.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="is not a safetensors file"):
        load_prompts(tmp_path / "x.safetensors")
    with pytest.raises(InputError, match="does not exist.*python -m adanat_env.prompts"):
        load_prompts(tmp_path / "none.safetensors")


def test_encoding_prompts_needs_a_local_encoder_and_names_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "p.txt").write_text("a red dress\n\n")
    with pytest.raises(InputError, match="--encoder .* is not a directory"):
        prompts_main(["--prompts", str(tmp_path / "p.txt"), "--encoder", str(tmp_path / "clip"), "--out", "x"])
    monkeypatch.setitem(sys.modules, "transformers", None)  # as where it is not installed
    with pytest.raises(ImportError, match="pip install transformers"):
        encode_prompts(["a"], tmp_path)


def test_the_text_generator_keeps_the_interface_prompt_ids_as_labels(prompt_file):
    gen = _generator(prompt_file)
    assert gen.num_classes == 3 and gen.null_class == 3  # the empty prompt is the empty class
    labels = torch.tensor([0, 1, 2, 0])
    a = generate(gen, labels, heuristic_schedule(2), 2, rng=gen.make_rng(0)).images
    b = generate(gen, labels, heuristic_schedule(2), 2, rng=gen.make_rng(0)).images
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    state = gen.start(torch.tensor([0, 1]), 2)
    assert not torch.allclose(state.features[0], state.features[1])  # the prompt reaches the features
    with pytest.raises(ValueError, match="needs a prompt bank"):
        NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ))
    with pytest.raises(ValueError, match="prompts must be"):
        NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ), prompts=torch.zeros(3, 77, 24))


def _make(prompt_file, vector: bool = False, **kw):
    common = dict(weights="random", prompts=str(prompt_file), nat_preset=TINY_T2I.to_dict(),
                  tokenizer_preset=TINY_VQ, device="cpu", steps=3, **kw)
    if vector:
        return gym.make_vec("AdaNAT-CC3M256-v0", vectorization_mode="vector_entry_point", **common)
    return gym.make("AdaNAT-CC3M256-v0", **common)


def test_the_cc3m_env_passes_the_checkers_and_the_vector_env_agrees(prompt_file):
    torch.manual_seed(0)
    env = _make(prompt_file)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    assert env.unwrapped.decoding_spec.residual == "heuristic"  # the official CC3M policy's heu = 1
    torch.manual_seed(0)
    single = _make(prompt_file)
    torch.manual_seed(0)
    vec = _make(prompt_file, vector=True, num_envs=1)
    assert_vector_env_agrees(single, vec, steps=3, seeds=(5, 6))
    assert all(0 <= int(single.reset(seed=k)[0]["label"][0]) < 3 for k in range(5))  # a prompt id of the file


def test_the_cc3m_env_without_weights_or_prompts_names_the_files(monkeypatch, tmp_path):
    monkeypatch.delenv("ADANAT_CC3M_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="needs prompts"):
        gym.make("AdaNAT-CC3M256-v0", device="cpu")
    with pytest.raises(InputError, match="prompt file"):
        gym.make("AdaNAT-CC3M256-v0", device="cpu", prompts=str(tmp_path / "none.safetensors"))


# ------------------------------------------------------------------ the tiny text NAT's pieces (issue #28, part 6)
def test_the_tiny_text_encoder_tokenizes_words_and_round_trips(tmp_path):
    from adanat_env.models.text_encoder import (PAD, UNK, TextEncoderConfig, TinyTextEncoder, load_text_encoder,
                                                save_text_encoder, words)
    from adanat_env.prompts import template_captions

    texts, classes = template_captions(["T-shirt/top", "Bag"])
    assert texts[1] == "a photo of a t-shirt/top" and classes == [0] * 8 + [1] * 8
    assert words("a photo of a t-shirt/top") == ["a", "photo", "of", "a", "t", "-", "shirt", "/", "top"]
    vocab = sorted({w for t in texts for w in words(t)})
    torch.manual_seed(0)
    enc = TinyTextEncoder(TextEncoderConfig(vocab=(PAD, UNK, *vocab), max_len=9, dim=16))
    ids = enc.tokenize(["a photo of a bag", "", "a zebra"])
    assert ids.shape == (3, 9) and (ids[1] == 0).all() and ids[2, 1].item() == 1  # unknown word -> <unk>
    states, pooled = enc.encode(["a photo of a bag", "a bag", ""])
    assert states.shape == (3, 9, 16) and pooled.shape == (3, 16) and not torch.allclose(states[0], states[1])
    save_text_encoder(enc, tmp_path / "enc", command="test")
    again = load_text_encoder(tmp_path / "enc")
    assert torch.allclose(again.encode(["a photo of a bag"])[0], states[:1], atol=1e-5)  # another batch size
    # the prompts command writes a file with the tiny encoder, as with CLIP
    (tmp_path / "p.txt").write_text("a photo of a bag\na t-shirt/top\n")
    out = prompts_main(["--prompts", str(tmp_path / "p.txt"), "--encoder", str(tmp_path / "enc"),
                        "--out", str(tmp_path / "p.safetensors")])
    bank = load_prompts(out, tokens=9, dim=16)
    assert bank.texts == ("a photo of a bag", "a t-shirt/top")
    assert torch.allclose(bank.states[0], states[0], atol=1e-5) and torch.allclose(bank.states[-1], states[2], atol=1e-5)


def test_prompt_classes_round_trip_and_reach_the_generator(tmp_path):
    g = torch.Generator().manual_seed(0)
    states, pooled = torch.randn(4, 5, 24, generator=g), torch.randn(4, 16, generator=g)
    f = save_prompts(tmp_path / "p.safetensors", states[:3], pooled[:3], states[3], pooled[3], TEXTS, "t", [3, 9, 3])
    bank = load_prompts(f)
    assert bank.classes == (3, 9, 3)
    gen = NATGenerator(load_nat(TINY_T2I), load_tokenizer(TINY_VQ), prompts=bank)
    assert gen.label_classes(torch.tensor([0, 1, 2])).tolist() == [3, 9, 3] and gen.num_label_classes == 10
    assert gen.prompt_embeds.shape == (4, 16)
    with pytest.raises(InputError, match="3 prompts need 3 classes"):
        save_prompts(tmp_path / "q.safetensors", states[:3], pooled[:3], states[3], pooled[3], TEXTS, "t", [1])


def test_a_captioned_split_gives_each_image_one_fixed_caption_of_its_class():
    from adanat_env.data import CaptionedSplit, DataError

    class Split:  # a class-labelled split of 400 images of 4 classes
        labels = np.repeat(np.arange(4), 100)
        directory, split = "d", "train"

        def __len__(self):
            return 400

        def load(self, idx, resolution=None, channels=1):
            return torch.as_tensor(idx)[:, None], torch.as_tensor(self.labels[idx])

    classes = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])  # three captions per class, interleaved
    s = CaptionedSplit(Split(), classes)
    assert s.num_classes == 12 and (classes[s.labels] == Split.labels).all()
    assert len(set(s.labels[Split.labels == 0].tolist())) == 3  # every caption of the class is used
    x, y = s.load(np.array([5, 250, 5]))
    assert y[0] == y[2] == s.labels[5] and y[1] == s.labels[250]
    assert torch.equal(torch.cat([b[1] for b in s.batches(np.arange(400), batch_size=64)]), torch.as_tensor(s.labels))
    with pytest.raises(DataError, match=r"1 of 4 classes .* have no caption .*class 3"):
        CaptionedSplit(Split(), np.array([0, 1, 2]))


def test_a_text_conditioned_discriminator_reads_the_prompts_normalised_embedding():
    from rewards.discriminator import ProjectedDiscriminator, TextCondition, build_discriminator

    class Pyramid(torch.nn.Module):
        channels = [4]

        def forward(self, x):
            return [x[:, :1].expand(-1, 4, -1, -1)]

    emb = torch.randn(3, 8)
    d = ProjectedDiscriminator(Pyramid(), 3, conditions=emb)
    head = d.heads[0]
    assert isinstance(head.cmap, TextCondition)
    assert torch.allclose(head.cmap.embeddings.norm(dim=1), torch.ones(3))
    x = torch.rand(2, 1, 6, 6)
    assert not torch.allclose(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 1])))
    # the same direction is the same condition: the embedding's length does not matter
    d2 = ProjectedDiscriminator(Pyramid(), 3, conditions=emb * torch.tensor([[1.0], [5.0], [0.2]]))
    d2.load_state_dict(d.state_dict())
    assert torch.allclose(d(x, torch.tensor([1, 2])), d2(x, torch.tensor([1, 2])))
    with pytest.raises(ValueError, match="no text condition"):
        build_discriminator("conv", (1, 6, 6), 3, conditions=emb)


def test_the_shipped_text_nat_env_passes_the_checkers_and_the_vector_env_agrees():
    env = gym.make("AdaNAT-FashionMNIST-T2I-v0", steps=3, device="cpu")
    gen = env.unwrapped.generator
    assert gen.num_classes == 80 and gen.num_label_classes == 10 and gen.prompt_embeds.shape[0] == 81
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    vec = gym.make_vec("AdaNAT-FashionMNIST-T2I-v0", num_envs=1, vectorization_mode="vector_entry_point", steps=3,
                       device="cpu")
    assert_vector_env_agrees(env, vec, steps=3, seeds=(7, 8))  # rewards too: the classifier's p(prompt's class)


def test_template_captions_give_each_image_a_caption_of_its_class_and_accuracy_checks_the_prompts_class():
    """The shipped text NAT on the real Fashion-MNIST split: the trainer's view of the data (prompt ids of the
    image's class) and the evaluation's class accuracy (the prompt's class, not its id). The trainer's whole loop
    runs in the captioned-folder test below."""
    from dataclasses import replace

    from adanat_env.data import CaptionedSplit, DEFAULT_DATA_DIR
    from adanat_env.embedded import load_embedded_generator, TEXT_ASSET_DIR
    from adanat_env.evaluation.metrics import ReferenceStats, feature_extractor, feature_stats
    from adanat_env.evaluation.sampling import evaluate_policy
    from adanat_env.models.classifier import load_classifier
    from agents.training import TrainConfig
    from agents.training.builders import open_split

    if not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST package not installed")
    gen = load_embedded_generator("cpu", nat_dir=TEXT_ASSET_DIR)
    cfg = TrainConfig(env="AdaNAT-FashionMNIST-T2I-v0", device="cpu")
    split = open_split(cfg, "test", gen)
    assert isinstance(split, CaptionedSplit) and split.num_classes == 80
    assert (gen.prompt_classes[torch.as_tensor(split.labels)].numpy() == split.base.labels).all()
    fn = feature_extractor("classifier", "cpu")
    x, _ = split.load(np.arange(200), 28, 1)
    feats = fn(x.float() / 255).numpy()
    ref = ReferenceStats(feature_stats(feats), feats, "classifier")
    m, _ = evaluate_policy(gen, heuristic_schedule(4), 4, fn, ref, num_samples=80, classifier=load_classifier())
    assert m["class_accuracy"] > 0.7  # chance is 10%; against the prompt ids it would be about 1%
    with pytest.raises(InputError, match="--clip-dir is for a text-to-image env"):
        replace(cfg, env="AdaNAT-FashionMNIST-v0", clip_dir="x").validate()
    with pytest.raises(InputError, match="classifier"):
        replace(cfg, nat_dir="x").validate()


@pytest.mark.slow  # PNG folders, a prompt file, then a tiny run
def test_a_captioned_image_folder_trains_with_each_image_seen_under_its_own_captions(tmp_path):
    """The data layout users have: images and a captions file (here Fashion-MNIST PNGs with captions of their
    class, two per image), encoded into a prompt file tied to the images, then the trainer."""
    import json

    from PIL import Image

    from adanat_env.data import CaptionedSplit, DEFAULT_DATA_DIR, load_idx_dataset
    from adanat_env.embedded import TEXT_ASSET_DIR
    from adanat_env.prompts import CAPTION_TEMPLATES, read_captions
    from agents.training import TrainConfig, Trainer

    if not (DEFAULT_DATA_DIR / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("Fashion-MNIST package not installed")
    names = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
    captions = {}
    for split, src in (("train", load_idx_dataset("train")), ("test", load_idx_dataset("test"))):
        for c in range(10):
            (tmp_path / "data" / split / f"c{c}").mkdir(parents=True)
            for i in np.flatnonzero(src.labels == c)[:12]:
                rel = f"{split}/c{c}/{i}.png"
                Image.fromarray(src.images[i]).save(tmp_path / "data" / rel)
                captions[rel] = [CAPTION_TEMPLATES[i % 8].format(names[c]), CAPTION_TEMPLATES[(i + 3) % 8].format(names[c])]
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    texts, images = read_captions(tmp_path / "captions.json")
    assert len(texts) == 480 and images[:2] == [images[0]] * 2 and images[0].startswith("train/c0/")
    prompt_file = tmp_path / "prompts.safetensors"
    prompts_main(["--captions", str(tmp_path / "captions.json"), "--encoder", str(TEXT_ASSET_DIR), "--out", str(prompt_file)])
    bank = load_prompts(prompt_file)
    assert bank.images == tuple(images) and bank.classes is None

    from rewards.discriminator import TextCondition

    cfg = TrainConfig(env="AdaNAT-FashionMNIST-T2I-v0", prompts=str(prompt_file), data_dir=str(tmp_path / "data"),
                      data_workers=0, steps=2, batch_size=16, episodes=16, minibatch=16, epochs=1, d_updates=1,
                      d_minibatch=16, d_warmup=1, d_real_count=0, val_count=40, curve_every=0, eval_samples=40,
                      curve_samples=40,
                      amp="none", device="cpu", seed=0, iterations=1)
    trainer = Trainer(cfg, tmp_path / "run", log=lambda _: None)
    gen = trainer.generator
    assert gen.num_classes == 480 and not gen.has_label_classes
    assert all(isinstance(h.cmap, TextCondition) for h in trainer.discriminator.reward.discriminator.heads)
    from agents.training.builders import open_split
    split = open_split(cfg, "train", gen)
    assert isinstance(split, CaptionedSplit)
    rel = [p.split("/data/")[-1] for p in split.base.paths]
    assert all(bank.images[k] == r for k, r in zip(split.labels, rel))  # one of the image's own captions
    from agents.training.report import captions_of

    test_prompts = captions_of(open_split(cfg, "test", gen), None, gen)  # what the final evaluation draws
    assert len(test_prompts) == 120 and all(bank.images[int(k)].startswith("test/") for k in test_prompts)
    assert all(bank.images[int(k)].startswith("train/") for k in trainer.validation().conditions)
    trainer.fit(progress=False)
    learned = trainer.evaluate()["details"]["learned"]
    assert np.isfinite(learned["fid"]) and "class_accuracy" not in learned  # the captions have no classes
    # an image without a caption is named
    from adanat_env.data import DataError, open_dataset
    (tmp_path / "data" / "train" / "c0" / "extra.png").write_bytes((tmp_path / "data" / images[0]).read_bytes())
    with pytest.raises(DataError, match="1 of 121 images .* have no caption .*train/c0/extra.png"):
        CaptionedSplit(open_dataset("train", tmp_path / "data", resolution=28, channels=1), None, bank.images)
