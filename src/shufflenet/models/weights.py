"""Reading and writing checkpoints: this package's, torchvision's and the official Megvii ones.

Files are read with ``torch.load(weights_only=True)`` or safetensors, never with a full unpickler, so a
checkpoint that would run code when loaded is refused.

Official Megvii (megvii-model/ShuffleNet-Series) checkpoints are ``{"state_dict": ...}`` saved from
``nn.DataParallel`` (keys prefixed ``module.``), with names ``first_conv``, ``features.<i>.branch_main``,
``features.<i>.branch_proj``, ``conv_last`` and ``classifier.0``. They are mapped onto this package's
``layout="official"`` ShuffleNet V2 (whose graph, including the shuffle placement, is the official one,
so the channel order carries over unchanged) and onto ShuffleNet V1 (where the official code's channel
shuffle reshapes to ``(C/g, g)`` — the inverse of the V1 paper's ``(g, C/g)`` — so the model's shuffle
modules are switched to that order when such a checkpoint is loaded).

**Input convention of the official checkpoints:** BGR channel order, pixel values 0-255, no mean/std
normalisation (official ``ToBGRTensor``; validation resizes the short side to 256 with OpenCV bilinear
and centre-crops 224). torchvision's checkpoints expect RGB in [0, 1] normalised with the ImageNet
mean/std. :class:`WeightsInfo.input_convention` says which applies to a loaded file.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shufflenet._io import atomic_file
from shufflenet.errors import CheckpointNotFoundError, WeightsError

FORMAT_TAG = "shufflenet"
OFFICIAL_INPUT = "BGR, 0-255, no mean/std normalisation (official Megvii ToBGRTensor)"
TORCHVISION_INPUT = "RGB, [0, 1], normalised with ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225)"


@dataclass
class WeightsInfo:
    """What :func:`load_weights` found: the checkpoint's format, the input it expects, stored metadata."""

    format: str
    input_convention: str
    meta: dict[str, Any] = field(default_factory=dict)


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """Read a checkpoint file safely (safetensors, or torch.load with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise WeightsError("reading .safetensors needs the 'safetensors' package") from exc
        try:
            return load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", detail)
        if found or "GLOBAL" in detail:
            what = found.group(1) if found else "a Python global"
            raise WeightsError(
                f"{path}: refused — the file references {what}, which could run code when unpickled "
                "(read with torch.load(weights_only=True); re-save it as a plain state dict or safetensors)"
            ) from exc
        raise WeightsError(f"{path}: truncated or corrupted checkpoint (not a readable torch file)") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise WeightsError(f"{path}: truncated or corrupted checkpoint ({str(exc).splitlines()[0][:160]})") from exc


def save_weights(model: nn.Module, path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None) -> None:
    """Write ``model``'s weights atomically (temp file + rename): safetensors for ``*.safetensors``,
    otherwise a ``torch.save`` dict ``{"format": "shufflenet", "state_dict": ..., "meta": ...}``."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_file(path) as f:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import save

            f.write(save(state, metadata={k: str(v) for k, v in (meta or {}).items()}))
        else:
            torch.save({"format": FORMAT_TAG, "version": 1, "state_dict": state, "meta": dict(meta or {})}, f)


def _unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Find the state dict inside a checkpoint object; return it with a format guess and metadata."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    if obj.get("format") == FORMAT_TAG:
        return dict(obj["state_dict"]), FORMAT_TAG, dict(obj.get("meta") or {})
    for key in ("state_dict", "model", "model_state", "ema"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner), "", {}
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError("checkpoint holds no tensors (expected a state dict)")
    return tensors, "", {}


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "_orig_mod."):  # DataParallel/DDP, torch.compile
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _is_megvii(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("first_conv.") for k in state) and any(".branch_main" in k for k in state)


def _unit_names(model: nn.Module) -> list[str]:
    stages = getattr(model, "stage_names", None)
    if not stages:
        raise WeightsError(f"an official Megvii checkpoint cannot be mapped onto {type(model).__name__}")
    return [f"{s}.{i}" for s in stages for i in range(len(getattr(model, s)))]


def megvii_to_package(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename (and for V1 re-order) an official Megvii ShuffleNet V1/V2 state dict to this package's keys.

    V2: ``branch_proj`` -> ``branch1``, ``branch_main`` -> ``branch2`` (same Sequential indices, same
    channel order: the official layout runs the official graph).
    V1: ``branch_main_1.{0,1}`` -> ``pw1``, ``branch_main_1.{3,4}`` -> ``dw``, ``branch_main_2`` -> ``pw2``.
    The official V1 block shuffles after its depthwise conv; this package's unit shuffles before it, so the
    depthwise conv and its BN are permuted by the official shuffle (the model must then use
    ``shuffle_order="official"``, which :func:`load_weights` sets).
    """
    units = _unit_names(model)
    is_v1 = any(".branch_main_1." in k for k in state)
    v1_keys = {"branch_main_1.0": "pw1.0", "branch_main_1.1": "pw1.1", "branch_main_1.3": "dw.0",
               "branch_main_1.4": "dw.1", "branch_main_2.0": "pw2.0", "branch_main_2.1": "pw2.1"}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.match(r"features\.(\d+)\.(.*)", key)
        if m:
            idx, rest = int(m.group(1)), m.group(2)
            if idx >= len(units):
                raise WeightsError(f"checkpoint has unit features.{idx} but the model has {len(units)} units")
            if is_v1:
                module, _, leaf = rest.rpartition(".")
                if module not in v1_keys:
                    raise WeightsError(f"unexpected official ShuffleNet V1 key {key}")
                rest = f"{v1_keys[module]}.{leaf}"
                if rest.startswith("dw.") and value.dim() >= 1:
                    value = value[_official_v1_shuffle_source(value.shape[0], model)]
            else:
                rest = rest.replace("branch_proj.", "branch1.").replace("branch_main.", "branch2.")
            key = f"{units[idx]}.{rest}"
        else:
            key = (key.replace("first_conv.", "conv1.").replace("conv_last.", "conv5.")
                   .replace("classifier.0.", "fc."))
        out[key] = value
    return out


def _official_v1_shuffle_source(channels: int, model: nn.Module) -> torch.Tensor:
    """Index ``tau`` with ``out[q] = in[tau[q]]`` for the official V1 shuffle (reshape to ``(C/g, g)``)."""
    from shufflenet.models.layers import channel_shuffle

    groups = getattr(model, "groups", 1)
    if groups <= 1:
        return torch.arange(channels)
    idx = torch.arange(channels, dtype=torch.float64).view(1, channels, 1, 1)
    return channel_shuffle(idx, channels // groups).flatten().long()


def _check_and_load(model: nn.Module, state: dict[str, torch.Tensor], fmt: str) -> None:
    own = model.state_dict()
    for k, v in own.items():  # checkpoints from before PyTorch 0.4.1 lack BN's step counter
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = v.clone()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    hint = ""
    if "fc.bias" in state and "fc.bias" not in own:
        hint = " (this looks like a torchvision-layout checkpoint: build the model with layout='torchvision')"
    elif "fc.bias" in own and "fc.bias" not in state and fmt != "megvii":
        hint = " (this looks like an official-layout checkpoint: build the model with layout='official')"
    for k in own:
        if k in state and tuple(state[k].shape) != tuple(own[k].shape):
            raise WeightsError(
                f"shape mismatch for {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}{hint}"
            )
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(f"checkpoint keys do not match the model: {'; '.join(parts)}{hint}")
    model.load_state_dict(state, strict=True)


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> WeightsInfo:
    """Load a checkpoint into ``model`` (strictly: every key, every shape).

    Reads this package's files (``save_weights``), torchvision state dicts (into ``layout="torchvision"``
    ShuffleNet V2 or any ``torchvision:NAME`` model) and official Megvii ShuffleNet V1/V2 checkpoints
    (into the default official layout). See the module docstring for each format's input convention.

    Raises:
        WeightsError: the file is missing, unsafe, truncated/corrupted, or does not fit the model; a shape
            mismatch names the parameter and both shapes.
    """
    state, fmt, meta = _unwrap(read_checkpoint(path))
    state = _strip_prefixes(state)
    if _is_megvii(state):
        state, fmt = megvii_to_package(state, model), "megvii"
        own = model.state_dict()
        if "fc.bias" in own and "fc.bias" not in state:
            raise WeightsError("official Megvii checkpoints fit layout='official' models (no classifier bias)")
    elif not fmt:
        fmt = "torchvision" if "fc.bias" in state else "state_dict"
    _check_and_load(model, state, fmt)
    if fmt == "megvii" and hasattr(model, "set_shuffle_order"):
        model.set_shuffle_order("official")  # ShuffleNet V1: the official code's permutation (see above)
    convention = OFFICIAL_INPUT if fmt == "megvii" else TORCHVISION_INPUT
    convention = str(meta.get("input_convention", convention))
    return WeightsInfo(fmt, convention, meta)
