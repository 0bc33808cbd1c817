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

import json
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shufflenet._io import atomic_file
from shufflenet.errors import (
    CheckpointNotFoundError,
    InvalidCheckpointError,
    WeightsError,
    WeightsMismatchError,
    first_line,
)
from shufflenet.models._checks import require_module, require_path
from shufflenet.models._shipped_files import SHIPPED_PREFIX, resolve_weights

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
    """Read a checkpoint file safely (safetensors, or torch.load with ``weights_only=True``).

    Raises:
        CheckpointNotFoundError: no such file.
        InvalidCheckpointError: not a checkpoint at all (bad input): a directory, an empty file, a plain
            Python pickle, or a file whose pickle names callables beyond tensors and containers (refused
            unread: loading it would run them). Nothing in the file is executed.
        WeightsError: a truncated or corrupted checkpoint.
    """
    require_path(path, "path", "read_checkpoint")
    if os.fspath(path).startswith(SHIPPED_PREFIX):  # a checkpoint shipped with the package (models/shipped.py)
        path = resolve_weights(path)
    path = Path(path)
    if not path.exists():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise InvalidCheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidCheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise InvalidCheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise WeightsError("reading .safetensors needs the 'safetensors' package") from exc
        try:
            state = load_file(str(path))
            meta = read_safetensors_metadata(path)
        except Exception as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({first_line(exc)})") from exc
        if meta.pop("format", None) == FORMAT_TAG:
            return {"format": FORMAT_TAG, "version": 1, "state_dict": state, "meta": meta}
        return state
    _refuse_plain_pickle(path)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols and legacy formats before failing on them; the error below
            # says what is wrong in one line, so its warnings would only bury it.
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", detail)
        if found or "GLOBAL" in detail:
            what = found.group(1) if found else "a Python global"
            raise InvalidCheckpointError(
                f"{path}: refused — the file references {what}, which could run code when unpickled "
                "(read with torch.load(weights_only=True); re-save it as a plain state dict or safetensors)"
            ) from exc
        operand = re.search(r"Unsupported operand (\d+)", detail)
        if operand and 0x8C <= int(operand.group(1)) <= 0x98:  # opcodes new in pickle protocols 4 and 5
            raise InvalidCheckpointError(
                f"{path}: written with a pickle protocol torch.load(weights_only=True) cannot read (opcode "
                f"{int(operand.group(1))}); re-save it with torch.save's default protocol") from exc
        raise WeightsError(f"{path}: truncated or corrupted checkpoint (not a readable torch file)") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, IndexError, KeyError,
            AttributeError, TypeError) as exc:
        # A damaged file is a failure (exit code 1), like a crashed write; what is not a checkpoint at all is
        # bad input (InvalidCheckpointError, exit code 2).
        raise WeightsError(f"{path}: truncated or corrupted checkpoint ({first_line(exc)[:160]})") from exc


# The first pickle of torch's legacy (pre-1.6, non-zip) format is this magic number.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# Globals a pickle of plain tensors and containers names; anything else is code the unpickler would call.
_TENSOR_GLOBAL = re.compile(r"^(torch[. ]|collections (OrderedDict|defaultdict)$|builtins (set|frozenset|"
                            r"slice|complex|bytearray)$|_codecs encode$|numpy[. ])")


def _refuse_plain_pickle(path: Path) -> None:
    """Refuse, before torch reads it, a file whose pickle would run code (naming what it would call), and a
    plain Python pickle (neither a torch zip file nor torch's legacy format). The pickle opcodes are only
    read (``pickletools.genops``), never executed."""
    try:
        if zipfile.is_zipfile(path):  # torch >= 1.6: the pickle is ARCHIVE/data.pkl, tensors lie beside it
            with zipfile.ZipFile(path) as zf:
                member = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    return
                with zf.open(member) as f:
                    names, _ = _pickle_globals(f)
            _refuse_code(path, names, "a torch file whose pickle")
            return
        with path.open("rb") as f:
            names, first_int = _pickle_globals(f)
    except InvalidCheckpointError:
        raise
    except Exception:  # noqa: BLE001 - not a well-formed pickle: torch.load will say it is corrupted
        return
    if first_int == _TORCH_LEGACY_MAGIC and not names:
        return  # torch's legacy format: its own weights-only reader handles (and checks) the rest
    _refuse_code(path, names, "a plain Python pickle that")
    raise InvalidCheckpointError(
        f"{path}: a plain Python pickle, not a torch checkpoint (save it with torch.save or as safetensors)")


def _refuse_code(path: Path, names: list[str], what: str) -> None:
    unsafe = sorted({n.replace(" ", ".") for n in names if not _TENSOR_GLOBAL.match(n)})
    if unsafe:
        raise InvalidCheckpointError(
            f"{path}: refused — {what} would run code when loaded (it calls {', '.join(unsafe[:3])}); it was "
            "not loaded. Save weights with torch.save(model.state_dict()) or as safetensors")


def _pickle_globals(f: Any) -> tuple[list[str], int | None]:
    """The globals (``"module name"``) the first pickle in ``f`` names, and its first integer constant."""
    names: list[str] = []
    pushed: list[str | None] = []  # the values of recent pushes that may name a global (None: other values)
    memo: dict[int, str | None] = {}
    first_int: int | None = None
    for op, arg, _pos in pickletools.genops(f):
        name = op.name
        if name in ("GLOBAL", "INST"):
            names.append(str(arg))
        elif name == "STACK_GLOBAL":
            module, attr = (pushed[-2:] if len(pushed) >= 2 else [None, None])
            names.append(f"{module} {attr}" if module and attr else "an unnamed global")
        elif name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        elif isinstance(arg, str) and ("UNICODE" in name or "STRING" in name):
            pushed.append(arg)
        elif name in ("INT", "LONG", "LONG1", "LONG4", "BININT", "BININT1", "BININT2") and first_int is None:
            first_int = int(arg)
        elif op.stack_after:
            pushed.append(None)
    return names, first_int


def save_weights(model: nn.Module, path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None) -> None:
    """Write ``model``'s weights atomically (temp file + rename): safetensors for ``*.safetensors``,
    otherwise a ``torch.save`` dict ``{"format": "shufflenet", "state_dict": ..., "meta": ...}``. In
    safetensors metadata (strings only) a non-string value is stored as JSON and read back decoded."""
    require_module(model, "model", "save_weights")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_file(path) as f:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import save

            text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (meta or {}).items()}
            f.write(save(state, metadata={**text, "format": FORMAT_TAG}))
        else:
            torch.save({"format": FORMAT_TAG, "version": 1, "state_dict": state, "meta": dict(meta or {})}, f)


def read_safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a ``.safetensors`` file, with the JSON values :func:`save_weights` wrote decoded
    (safetensors stores strings only)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = dict(f.metadata() or {})
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value) if value[:1] in ("{", "[") or value in ("true", "false", "null") \
                or _NUMBER.fullmatch(value) else value
        except ValueError:
            out[key] = value
    return out


_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def _unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Find the state dict inside a checkpoint object; return it with a format guess and metadata."""
    if not isinstance(obj, Mapping):
        raise InvalidCheckpointError(f"checkpoint holds a {type(obj).__name__}, not a state dict")
    if obj.get("format") == FORMAT_TAG:
        return dict(obj["state_dict"]), FORMAT_TAG, dict(obj.get("meta") or {})
    for key in ("state_dict", "model", "model_state", "ema"):
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner), "", {}
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InvalidCheckpointError("checkpoint holds no tensors (expected a state dict)")
    return tensors, "", {}


def classifier_outputs(obj: Any) -> int | None:
    """The number of outputs of the classifier in a checkpoint object (from :func:`read_checkpoint`), read
    off its weights (``fc``, torchvision's ``classifier.N`` or ``head``); ``None`` when none is recognised."""
    try:
        state = _strip_prefixes(_unwrap(obj)[0])
    except WeightsError:
        return None
    for key in ("fc.weight", "classifier.0.weight", "classifier.1.weight", "classifier.3.weight",
                "classifier.weight", "head.weight", "heads.head.weight"):
        t = state.get(key)
        if isinstance(t, torch.Tensor) and t.dim() == 2:
            return int(t.shape[0])
    return None


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
        raise WeightsMismatchError(f"an official Megvii checkpoint cannot be mapped onto {type(model).__name__}")
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
                raise WeightsMismatchError(f"checkpoint has unit features.{idx} but the model has {len(units)} units")
            if is_v1:
                module, _, leaf = rest.rpartition(".")
                if module not in v1_keys:
                    raise WeightsMismatchError(f"unexpected official ShuffleNet V1 key {key}")
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
            raise WeightsMismatchError(
                f"shape mismatch for {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}{hint}"
            )
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise WeightsMismatchError(f"checkpoint keys do not match the model: {'; '.join(parts)}{hint}")
    model.load_state_dict(state, strict=True)


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> WeightsInfo:
    """Load a checkpoint into ``model`` (strictly: every key, every shape).

    Reads this package's files (``save_weights``), torchvision state dicts (into ``layout="torchvision"``
    ShuffleNet V2 or any ``torchvision:NAME`` model) and official Megvii ShuffleNet V1/V2 checkpoints
    (into the default official layout). See the module docstring for each format's input convention.

    Raises:
        WrongTypeError: ``model`` is not an ``nn.Module`` (e.g. a model name) or ``path`` is not a path.
        WeightsError: the file is missing, unsafe, truncated/corrupted (:class:`InvalidCheckpointError`), or
            does not fit the model (:class:`WeightsMismatchError`; a shape mismatch names the parameter and
            both shapes). All of these are bad input (``UserInputError``) too.
    """
    require_module(model, "model", "load_weights")
    state, fmt, meta = _unwrap(read_checkpoint(path))
    state = _strip_prefixes(state)
    if _is_megvii(state):
        state, fmt = megvii_to_package(state, model), "megvii"
        own = model.state_dict()
        if "fc.bias" in own and "fc.bias" not in state:
            raise WeightsMismatchError("official Megvii checkpoints fit layout='official' models (no classifier bias)")
    elif not fmt:
        fmt = "torchvision" if "fc.bias" in state else "state_dict"
    _check_and_load(model, state, fmt)
    if fmt == "megvii" and hasattr(model, "set_shuffle_order"):
        model.set_shuffle_order("official")  # ShuffleNet V1: the official code's permutation (see above)
    convention = OFFICIAL_INPUT if fmt == "megvii" else TORCHVISION_INPUT
    convention = str(meta.get("input_convention", convention))
    return WeightsInfo(fmt, convention, meta)
