"""Attention ops: the fused ``nn.MultiheadAttention``/``nn.TransformerEncoderLayer`` fast paths priced like
their unfused paths, torchvision's published ViT count, and totals that say when they are incomplete."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from shufflenet.cost import CostCounter, count_cost, handles, tables


def rows_of(module: nn.Module, *inputs: torch.Tensor, grad: bool, **kwargs) -> list[list]:
    """The counter's raw rows for one call; ``grad=False`` takes the fused fast path of eval-mode modules."""
    counter = CostCounter()
    module.eval()
    with torch.set_grad_enabled(grad), counter:
        module(*inputs, **kwargs)
    assert counter.unsupported == {}
    return counter.rows


def totals(rows: list[list]) -> tuple[int, int]:
    return sum(r[5] for r in rows), sum(r[6] for r in rows)


@pytest.fixture(scope="module")
def vit_b_16() -> nn.Module:
    # Built on meta and materialised uninitialised: counting needs shapes, not torchvision's slow init.
    with torch.device("meta"):
        model = torchvision.models.vit_b_16()
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.eval()


def test_vit_b_16_matches_torchvision_published_ops(vit_b_16) -> None:
    published = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.meta["_ops"]  # GFLOPs (multiply-adds)
    rep = count_cost(vit_b_16)  # no_grad: nn.MultiheadAttention runs _native_multi_head_attention
    assert "_native_multi_head_attention" in {r.op for r in rep.layers}
    assert rep.unsupported_ops == {} and rep.complete
    assert rep.flops / 1e9 == pytest.approx(published, rel=0.005)
    slow = rows_of(vit_b_16, torch.zeros(1, 3, 224, 224), grad=True)  # with grad: linear + SDPA + linear
    assert "_native_multi_head_attention" not in {r[1] for r in slow}
    assert totals(slow) == (rep.flops, rep.mac)  # batch 1: the fused op costs what its parts cost
    assert totals(slow)[0] / 1e9 == pytest.approx(published, rel=0.005)


class SelfAttention(nn.Module):
    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize(("batch", "seq", "embed", "heads"), [(1, 5, 16, 4), (3, 7, 8, 2)])
def test_native_mha_flops_closed_form(batch, seq, embed, heads) -> None:
    mha = nn.MultiheadAttention(embed, heads, batch_first=True)
    x = torch.randn(batch, seq, embed)
    fast = rows_of(mha, x, x, x, grad=False, need_weights=False)
    assert [r[1] for r in fast] == ["_native_multi_head_attention"] and fast[0][2] == "linear"
    # q/k/v projections 3*L*E^2, Q K^T and attn.V 2*L^2*E, out-projection L*E^2
    expected = batch * (4 * seq * embed * embed + 2 * seq * seq * embed)
    assert fast[0][5] == handles.mha_flops(batch, seq, seq, embed) == expected
    assert totals(rows_of(mha, x, x, x, grad=True, need_weights=False))[0] == expected
    rep = count_cost(SelfAttention(mha), (batch, seq, embed))
    assert (rep.layers[0].name, rep.layers[0].module_type) == ("mha", "MultiheadAttention")
    assert rep.layers[0].params == sum(p.numel() for p in mha.parameters())  # every weight and bias is read


def test_native_mha_mac_closed_form() -> None:
    b, seq, e, h = 1, 5, 16, 4
    mha = nn.MultiheadAttention(e, h, batch_first=True)
    x = torch.randn(b, seq, e)
    weights = 4 * e * e + 4 * e
    proj, ctx, scores = 3 * b * seq * e, b * seq * e, b * h * seq * seq
    base = (b * seq * e + weights + proj) + 2 * proj + (proj + ctx) + 2 * ctx
    (row,) = rows_of(mha, x, x, x, grad=False, need_weights=False)
    assert row[6] == base and row[7] == 4 * base
    assert row[6] == totals(rows_of(mha, x, x, x, grad=True, need_weights=False))[1]  # = addmm, clone, SDPA, addmm
    (row,) = rows_of(mha, x, x, x, grad=False, need_weights=True)  # scores written, softmaxed, read, averaged
    assert row[6] == base + 4 * scores + scores + b * seq * seq
    (row,) = rows_of(mha, x, x, x, grad=False, need_weights=True, average_attn_weights=False)
    assert row[6] == base + 4 * scores


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_fused_encoder_layer_costs_its_unfused_path(norm_first, activation) -> None:
    layer = nn.TransformerEncoderLayer(16, 4, 24, batch_first=True, norm_first=norm_first, activation=activation)
    x = torch.randn(1, 6, 16)
    fast = rows_of(layer, x, grad=False)
    assert [r[1] for r in fast] == ["_transformer_encoder_layer_fwd"]
    slow = rows_of(layer, x, grad=True)
    assert totals(fast) == totals(slow)
    assert totals(fast)[0] == handles.mha_flops(1, 6, 6, 16) + 2 * 6 * 16 * 24


def test_flash_layout_attention_flops() -> None:
    q = torch.empty(2, 5, 4, 8, device="meta")  # (B, L, H, E)
    kv = torch.empty(2, 7, 2, 8, device="meta")  # grouped-query: 2 key/value heads
    args = (q, kv, kv, None, None)
    assert tables.flop_attention_bshd(args, {}, None) == 2 * 4 * 5 * 7 * (8 + 8)
    packed_q, packed_kv = torch.empty(1, 9, 4, 8), torch.empty(1, 12, 4, 8)
    cu_q, cu_k = torch.tensor([0, 4, 9]), torch.tensor([0, 5, 12])  # two sequences: (4 x 5) and (5 x 7)
    args = (packed_q, packed_kv, packed_kv, cu_q, cu_k)
    assert tables.flop_attention_bshd(args, {}, None) == (4 * 5 + 5 * 7) * 4 * 16


def test_sdpa_math_path_is_fully_priced() -> None:
    q = torch.randn(1, 2, 5, 8)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    counter = CostCounter()
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), counter:  # bmm, _safe_softmax, bmm
        torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    assert counter.unsupported == {} and "_safe_softmax" in [r[1] for r in counter.rows]
    assert sum(r[5] for r in counter.rows) == handles.attention_flops(q.shape, q.shape, q.shape)


def test_unsupported_op_flags_the_totals() -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.fft(x).real + 1

    rep = count_cost(Odd(), (4, 8))
    assert not rep.complete and rep.to_dict()["complete"] is False
    table = rep.to_table()
    assert table.splitlines()[0].startswith("WARNING: incomplete totals") and "_fft_r2c x1" in table
    assert "whole model (INCOMPLETE)" in table and "WARNING" in rep.summary()
    assert table.splitlines()[-1].startswith("note: WARNING: incomplete totals")  # above and below
    ok = count_cost(nn.Linear(8, 2), (4, 8))
    assert ok.complete and ok.to_dict()["complete"] is True and "WARNING" not in ok.to_table() + ok.summary()


def test_counting_under_inference_mode_decomposes_composite_ops() -> None:
    # Without autograd, conv2d/batch_norm/linear reach the counter undecomposed: still priced in full.
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4))
    ref = count_cost(model, (2, 3, 8, 8))
    with torch.inference_mode():
        rep = count_cost(model, (2, 3, 8, 8))
    assert (rep.flops, rep.mac, rep.unsupported_ops) == (ref.flops, ref.mac, {})
    assert [r.op for r in rep.layers][:3] == [r.op for r in ref.layers][:3]  # linear is priced as itself
