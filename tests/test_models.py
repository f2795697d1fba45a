"""The U-ViT and VQGAN classes: manifest equality with the official modules, forward contracts, quirks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adanat_env.models import NAT_PRESETS, TOKENIZER_PRESETS, UViT, UViTConfig, VQGAN, load_nat, load_tokenizer
from adanat_env.models.vqgan import _ResBlock

from .conftest import TINY_NAT, TINY_VQ, load_manifest


def _shapes_on_meta(cls: type[nn.Module], cfg) -> dict[str, list[int]]:
    with torch.device("meta"):
        model = cls(cfg)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "cls,preset,manifest",
    [
        (UViT, NAT_PRESETS["imagenet256-L"], "adanat_L_uvit_imagenet256.json"),
        (UViT, NAT_PRESETS["imagenet256-S"], "adanat_S_uvit_imagenet256_INFERRED.json"),
        (UViT, NAT_PRESETS["cc3m-t2i"], "adanat_cc3m_uvit_t2i.json"),
        (VQGAN, TOKENIZER_PRESETS["maskgit-vqgan-f16"], "vqgan_maskgit_f16_1024.json"),
    ],
)
def test_state_dict_equals_official_manifest(cls, preset, manifest):
    expected, meta = load_manifest(manifest)
    got = _shapes_on_meta(cls, preset)
    assert sorted(set(expected) - set(got)) == [], "keys missing from our module"
    assert sorted(set(got) - set(expected)) == [], "keys our module has that the official one lacks"
    assert got == expected
    assert sum(torch.Size(s).numel() for s in got.values()) == meta["parameter_count"]
    assert len(got) == meta["num_keys"]


def test_uvit_forward_contract():
    torch.manual_seed(0)
    nat = UViT(TINY_NAT).eval()
    ids = torch.randint(0, TINY_NAT.codebook_size + 1, (3, TINY_NAT.num_tokens))
    labels = torch.tensor([0, 5, TINY_NAT.null_class])
    captured = {}
    nat.norm.register_forward_hook(lambda m, i, o: captured.setdefault("norm", o))
    logits, feat = nat(ids, labels)
    assert logits.shape == (3, TINY_NAT.num_tokens, TINY_NAT.codebook_size)
    assert feat.shape == (3, TINY_NAT.num_tokens, TINY_NAT.embed_dim)
    # features are the final LayerNorm output at the image positions (context token dropped)
    torch.testing.assert_close(feat, captured["norm"][:, 1:])
    # labels may be (B,) or (B, 1)
    logits2, _ = nat(ids, labels[:, None])
    torch.testing.assert_close(logits, logits2)
    # the MLM head is tied to the token embedding (mask row dropped) plus a learned bias
    head = nat.mlm_layer
    h = head.ln(torch.nn.functional.gelu(head.fc(feat)))
    emb = nat.token_emb.word_embeddings.weight
    expected = h @ emb[: TINY_NAT.codebook_size].t() + head.bias[..., : TINY_NAT.codebook_size]
    torch.testing.assert_close(logits, expected)


TINY_T2I = UViTConfig(img_size=4, codebook_size=32, embed_dim=32, depth=2, num_heads=2, num_classes=0, clip_dim=24,
                      num_clip_tokens=5)


def test_text_conditioned_uvit_forward_contract():
    """The CC3M variant: the context is num_clip_tokens text-encoder vectors, each through one Linear; the features
    are the image positions' final LayerNorm output; the prompt changes the logits."""
    torch.manual_seed(0)
    nat = UViT(TINY_T2I).eval()
    assert isinstance(nat.context_embed, nn.Linear) and TINY_T2I.text
    ids = torch.randint(0, TINY_T2I.codebook_size + 1, (2, TINY_T2I.num_tokens))
    prompt = 10 * torch.randn(2, 5, 24)
    captured = {}
    hook = nat.norm.register_forward_hook(lambda m, i, o: captured.__setitem__("norm", o))
    with torch.no_grad():
        logits, feat = nat(ids, prompt)
        hook.remove()
        other, _ = nat(ids, 10 * torch.randn(2, 5, 24))
    assert logits.shape == (2, 16, 32) and feat.shape == (2, 16, 32)
    torch.testing.assert_close(feat, captured["norm"][:, 5:])  # the 5 context positions dropped
    assert float((logits - other).abs().max()) > 1e-3
    for bad in (torch.randn(2, 4, 24), torch.zeros(2, 1, dtype=torch.long)):
        with pytest.raises(ValueError, match="float context of shape \\(2, 5, 24\\)"):
            nat(ids, bad)
    with pytest.raises(ValueError, match="empty prompt"):
        TINY_T2I.null_class


def test_uvit_long_skips_pair_last_in_block_with_first_out_block():
    torch.manual_seed(0)
    nat = UViT(TINY_NAT.__class__(**{**TINY_NAT.to_dict(), "depth": 4})).eval()
    outs, skips_seen = [], []
    for blk in nat.in_blocks:
        blk.register_forward_hook(lambda m, i, o: outs.append(o))
    for blk in nat.out_blocks:
        blk.register_forward_hook(lambda m, i, o: skips_seen.append(i[1]))
    nat(torch.zeros(2, TINY_NAT.num_tokens, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    assert skips_seen[0] is outs[-1] and skips_seen[1] is outs[0]


def test_vqgan_shortcut_quirk_applies_to_residual_output():
    torch.manual_seed(0)
    blk = _ResBlock(8, 16, groups=4).eval()
    x = torch.randn(2, 8, 6, 6)
    h = blk.conv2(torch.nn.functional.silu(blk.norm2(blk.conv1(torch.nn.functional.silu(blk.norm1(x))))))
    torch.testing.assert_close(blk(x), blk.nin_shortcut(h) + h)
    same = _ResBlock(8, 8, groups=4).eval()
    h2 = same.conv2(torch.nn.functional.silu(same.norm2(same.conv1(torch.nn.functional.silu(same.norm1(x))))))
    torch.testing.assert_close(same(x), x + h2)


def test_vqgan_encode_decode_shapes_and_range():
    torch.manual_seed(0)
    vq = VQGAN(TINY_VQ).eval().requires_grad_(False)
    images = torch.rand(2, 3, TINY_VQ.resolution, TINY_VQ.resolution)
    tokens = vq.encode(images)
    assert tokens.shape == (2, TINY_VQ.num_tokens) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < TINY_VQ.n_embed
    # the quantiser picks the nearest codebook vector
    z = vq.encode_latent(images).permute(0, 2, 3, 1).reshape(-1, TINY_VQ.embed_dim)
    d = torch.cdist(z, vq.quantize.embedding.weight)
    torch.testing.assert_close(tokens.flatten(), d.argmin(1))
    out = vq.decode(tokens)
    assert out.shape == images.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match="tokens"):
        vq.decode(torch.zeros(2, 5, dtype=torch.long))


def test_vqgan_encoder_feature_maps_are_the_encoder_levels():
    torch.manual_seed(0)
    vq = VQGAN(TINY_VQ).eval().requires_grad_(False)
    images = torch.rand(2, 3, TINY_VQ.resolution, TINY_VQ.resolution)
    maps = vq.encoder_feature_maps(images)
    side = TINY_VQ.resolution
    assert [tuple(m.shape) for m in maps] == [(2, TINY_VQ.ch * m, side // 2**i, side // 2**i)
                                              for i, m in enumerate(TINY_VQ.ch_mult)]
    # the last map is exactly what the encoder's forward hands to its middle blocks
    seen = []
    hook = vq.encoder.mid.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    vq.encode_latent(images)
    hook.remove()
    assert torch.equal(maps[-1], seen[0])


def test_loaders_freeze_by_default():
    nat = load_nat(TINY_NAT)
    tok = load_tokenizer(TINY_VQ)
    assert not nat.training and not tok.training
    assert not any(p.requires_grad for p in nat.parameters())
    assert any(p.requires_grad for p in load_nat(TINY_NAT, frozen=False).parameters())


def test_unknown_preset_names_the_choices():
    with pytest.raises(KeyError, match="imagenet256-L"):
        load_nat("imagenet512-XL")
