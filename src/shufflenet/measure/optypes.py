"""The paper's Figure 2 operator buckets, the classification of measured ops into them, and Fig. 2's numbers.

ShuffleNet V2 Sec. 1 / Fig. 2 splits the runtime of ShuffleNet V1 (1x, g=3) and MobileNet V2 (1x) into
Conv, Elemwise, Data, Shuffle and Other, to show that FLOPs (which count only the Conv part) miss a large
share of the time. Here the same buckets are used for any model, with Conv shown apart as dense, group
and depthwise, and Pooling and FC kept out of "Other" (Fig. 2 does not show them; they are folded back
into "Other" for the comparison with the paper, see :func:`paper_view`).

A measured op is classified from, in order: the module it ran in (ChannelShuffle / ShuffleSplit -> Shuffle),
a recognised shuffle sequence (``view -> transpose(rank 5) -> copy -> view`` outside those modules), the
cost engine's ``kind`` of the aten ops it dispatched (``conv``/``gconv``/``dwconv``/``linear``/``norm``/
``act``/``elementwise``/``pool``/``data``), and finally its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# Bucket keys, in display order. "other" holds ops of no known family; "overhead" the measured time between
# ops (Python and framework dispatch), which the paper's "Other" also contains.
CONV_DENSE, CONV_GROUP, CONV_DEPTHWISE = "conv_dense", "conv_group", "conv_depthwise"
ELEMWISE, DATA, SHUFFLE, POOLING, FC, OTHER, OVERHEAD = (
    "elemwise", "data", "shuffle", "pooling", "fc", "other", "overhead")
BUCKETS = (CONV_DENSE, CONV_GROUP, CONV_DEPTHWISE, ELEMWISE, DATA, SHUFFLE, POOLING, FC, OTHER, OVERHEAD)
LABELS = {
    CONV_DENSE: "Conv (dense)", CONV_GROUP: "Conv (group)", CONV_DEPTHWISE: "Conv (depthwise)",
    ELEMWISE: "Elemwise", DATA: "Data", SHUFFLE: "Shuffle", POOLING: "Pooling", FC: "FC",
    OTHER: "Other (ops)", OVERHEAD: "Other (framework, between ops)",
}
# The Fig. 2 category of each bucket (our finer buckets roll up into these).
GROUPS = {
    CONV_DENSE: "Conv", CONV_GROUP: "Conv", CONV_DEPTHWISE: "Conv", ELEMWISE: "Elemwise", DATA: "Data",
    SHUFFLE: "Shuffle", POOLING: "Pooling", FC: "FC", OTHER: "Other", OVERHEAD: "Other",
}
GROUP_ORDER = ("Conv", "Elemwise", "Data", "Shuffle", "Pooling", "FC", "Other")
PAPER_CATEGORIES = ("Conv", "Elemwise", "Data", "Shuffle", "Other")
# Fig. 2 has no Pooling or FC slice: they can only be inside its "Other".
PAPER_FOLD = {"Pooling": "Other", "FC": "Other"}

# Modules whose every op is the channel shuffle (shufflenet.models: V1 ChannelShuffle, V2 ShuffleSplit).
SHUFFLE_MODULES = frozenset({"ChannelShuffle", "ShuffleSplit"})

_CONV_KINDS = {"conv": CONV_DENSE, "gconv": CONV_GROUP, "dwconv": CONV_DEPTHWISE}
_KIND_BUCKET = {"linear": FC, "pool": POOLING, "norm": ELEMWISE, "act": ELEMWISE, "elementwise": ELEMWISE,
                "data": DATA}
# Kind priority when one op dispatched several kinds (linear = t (view) + addmm: FC wins over data).
_KIND_PRIORITY = ("dwconv", "gconv", "conv", "linear", "pool", "norm", "act", "elementwise", "data")

# Name fallbacks for top-level (often composite) ops; short aten names without the "aten::" prefix.
CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d", "convolution", "_convolution", "mkldnn_convolution",
                      "cudnn_convolution", "conv_transpose2d", "thnn_conv2d", "_slow_conv2d_forward",
                      "_conv_depthwise2d", "conv_depthwise3d", "_nnpack_spatial_convolution"})
FC_OPS = frozenset({"linear", "addmm", "mm", "matmul", "bmm", "baddbmm", "_addmm_activation", "einsum"})
POOL_OPS = frozenset({"max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "avg_pool1d",
                      "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
                      "_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "amax", "sum"})
ELEMWISE_OPS = frozenset({
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "hardsigmoid", "hardsigmoid_",
    "hardswish", "hardswish_", "silu", "silu_", "gelu", "tanh", "clamp", "clamp_", "clamp_min", "leaky_relu",
    "add", "add_", "sub", "mul", "mul_", "div", "div_", "batch_norm", "native_batch_norm",
    "_batch_norm_impl_index", "_native_batch_norm_legit_no_training", "layer_norm", "group_norm",
    "dropout", "dropout_", "softmax", "log_softmax", "_softmax", "threshold", "where", "exp", "sqrt",
})
DATA_OPS = frozenset({
    "cat", "concat", "stack", "split", "split_with_sizes", "chunk", "unbind", "clone", "contiguous", "copy_",
    "to", "_to_copy", "pad", "constant_pad_nd", "reflection_pad2d", "replication_pad2d", "slice", "select",
    "narrow", "view", "_unsafe_view", "reshape", "_reshape_alias", "flatten", "unflatten", "permute",
    "transpose", "t", "unsqueeze", "squeeze", "expand", "as_strided", "alias", "detach", "index_select",
    "gather", "empty", "empty_like", "zeros", "zeros_like", "fill_", "zero_", "repeat", "roll", "flip",
    "upsample_nearest2d", "upsample_bilinear2d", "pixel_shuffle", "channel_shuffle",
    "native_channel_shuffle",
})
_SHUFFLE_NAMES = frozenset({"channel_shuffle", "native_channel_shuffle", "pixel_shuffle"})
_COPY_OPS = frozenset({"contiguous", "clone", "copy_", "reshape", "_reshape_copy", "flatten"})
_RESHAPE_OPS = frozenset({"view", "reshape", "_unsafe_view", "_reshape_alias", "flatten", "unflatten"})
_TRANSPOSE_OPS = frozenset({"transpose", "permute", "swapaxes", "movedim"})


def short_name(op: str) -> str:
    """``"aten::relu_"`` -> ``"relu_"``; other namespaces keep theirs (``"mkldnn::foo"``)."""
    return op[6:] if op.startswith("aten::") else op


def bucket_of_kind(kind: str) -> str | None:
    """The bucket of a cost-engine ``kind`` (``conv``, ``gconv``, ``dwconv``, ``linear``, ...), if any."""
    return _CONV_KINDS.get(kind) or _KIND_BUCKET.get(kind)


def classify(op: str, *, kinds: Iterable[str] = (), module_type: str = "", shuffle: bool = False) -> str:
    """The bucket of one measured op (see the module docstring for the order of the rules).

    Args:
        op: the profiler's op name, ``"aten::conv2d"`` or ``"conv2d"``.
        kinds: cost-engine kinds of the aten ops this op dispatched (e.g. ``{"gconv"}`` for a group conv:
            dense/group/depthwise cannot be told from the name alone).
        module_type: class name of the innermost module the op ran in.
        shuffle: the op belongs to a recognised channel-shuffle sequence (see :func:`shuffle_positions`).
    """
    name = short_name(op)
    if shuffle or module_type in SHUFFLE_MODULES or name in _SHUFFLE_NAMES:
        return SHUFFLE
    kinds = set(kinds)
    for kind in _KIND_PRIORITY:
        if kind in kinds:
            return bucket_of_kind(kind)  # type: ignore[return-value]
    if name in CONV_OPS:
        return CONV_DENSE  # no cost row to say otherwise: groups unknown, counted as dense
    if name in FC_OPS:
        return FC
    if name in POOL_OPS:
        return POOLING
    if name in ELEMWISE_OPS:
        return ELEMWISE
    if name in DATA_OPS:
        return DATA
    return OTHER


def conv_bucket(groups: int, in_channels: int) -> str:
    """Dense (groups 1), depthwise (groups = input channels > 1) or group convolution."""
    if groups <= 1:
        return CONV_DENSE
    return CONV_DEPTHWISE if groups == in_channels else CONV_GROUP


def shuffle_positions(names: Sequence[str], input_ranks: Sequence[int | None]) -> set[int]:
    """Positions of a channel shuffle written as plain tensor ops (e.g. torchvision's ``channel_shuffle``):
    ``view(N, g, C/g, H, W) -> transpose(1, 2) -> contiguous -> view(N, C, H, W)``.

    Recognised by a transpose/permute of a rank-5 tensor followed by a copy; the reshape before and after
    it belong to the shuffle too. ``names`` are consecutive op names in one module call, ``input_ranks``
    the rank of each op's first input (``None`` when unknown).
    """
    out: set[int] = set()
    n = len(names)
    for i, name in enumerate(names):
        if short_name(name) not in _TRANSPOSE_OPS or input_ranks[i] != 5:
            continue
        if i + 1 >= n or short_name(names[i + 1]) not in _COPY_OPS:
            continue
        out.update((i, i + 1))
        if i > 0 and short_name(names[i - 1]) in _RESHAPE_OPS:
            out.add(i - 1)
        if i + 2 < n and short_name(names[i + 2]) in _RESHAPE_OPS:
            out.add(i + 2)
    return out


def group_totals(bucket_times: Mapping[str, float]) -> dict[str, float]:
    """Bucket times rolled up into the Fig. 2 categories plus Pooling and FC (:data:`GROUP_ORDER`)."""
    out = dict.fromkeys(GROUP_ORDER, 0.0)
    for key, t in bucket_times.items():
        out[GROUPS[key]] += t
    return out


def percentages(times: Mapping[str, float]) -> dict[str, float]:
    """Each value as a percentage of their sum (all zeros when the sum is zero); the values sum to 100."""
    total = sum(times.values())
    return {k: (100.0 * v / total if total > 0 else 0.0) for k, v in times.items()}


def paper_view(bucket_times: Mapping[str, float]) -> dict[str, float]:
    """Our times in Fig. 2's five categories (Pooling and FC folded into Other), as percentages."""
    groups = group_totals(bucket_times)
    folded = dict.fromkeys(PAPER_CATEGORIES, 0.0)
    for g, t in groups.items():
        folded[PAPER_FOLD.get(g, g)] += t
    return percentages(folded)


# --- the paper's numbers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fig2Breakdown:
    """One pie of the paper's Fig. 2: runtime % per category; ``None`` where the model has no such op."""

    model: str
    platform: str
    percent: Mapping[str, float | None]
    source: str = "ShuffleNet V2 paper, Fig. 2 (pie-chart labels)"

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "platform": self.platform, "percent": dict(self.percent),
                "source": self.source}


# ShuffleNet V2 paper Fig. 2. GPU: GTX 1080Ti, cuDNN 7, batch 8; ARM: Snapdragon 810, one thread, batch 1
# (Sec. 2). MobileNet V2 has no shuffle ("n/a" in the figure).
_GPU = "GPU (GTX 1080Ti)"
_ARM = "ARM (Snapdragon 810)"
FIG2: dict[str, dict[str, Fig2Breakdown]] = {
    "shufflenet_v1_g3_x1_0": {
        "gpu": Fig2Breakdown("ShuffleNet v1 1x g=3", _GPU,
                             {"Conv": 50.0, "Elemwise": 15.0, "Data": 20.0, "Shuffle": 5.0, "Other": 10.0}),
        "arm": Fig2Breakdown("ShuffleNet v1 1x g=3", _ARM,
                             {"Conv": 87.0, "Elemwise": 4.0, "Data": 1.0, "Shuffle": 0.0, "Other": 8.0}),
    },
    "mobilenet_v2": {
        "gpu": Fig2Breakdown("MobileNet v2 1x", _GPU,
                             {"Conv": 54.0, "Elemwise": 23.0, "Data": 22.0, "Shuffle": None, "Other": 1.0}),
        "arm": Fig2Breakdown("MobileNet v2 1x", _ARM,
                             {"Conv": 89.0, "Elemwise": 10.5, "Data": 0.3, "Shuffle": None, "Other": 0.2}),
    },
}
# MFLOPs at 224x224 (Table 8): a model of the right name but another width or input is not Fig. 2's.
FIG2_MFLOPS = {"shufflenet_v1_g3_x1_0": 140.0, "mobilenet_v2": 300.0}
_ALIASES = {"torchvision:mobilenet_v2": "mobilenet_v2", "mobilenet_v2_x1_0": "mobilenet_v2"}


def fig2_reference(model_name: str | None, mflops_per_image: float | None = None) -> dict[str, Fig2Breakdown] | None:
    """The paper's Fig. 2 pies (``{"gpu": ..., "arm": ...}``) when ``model_name`` is one of Fig. 2's models
    (``shufflenet_v1_g3_x1_0``, ``torchvision:mobilenet_v2``) and, if given, its multiply-adds per image are
    within 10% of the paper's (so another width multiplier or input size does not match)."""
    if not model_name:
        return None
    key = model_name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FIG2:
        return None
    if mflops_per_image is not None and abs(mflops_per_image / FIG2_MFLOPS[key] - 1.0) > 0.10:
        return None
    return FIG2[key]
