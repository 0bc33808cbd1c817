"""Datasets, augmentation, samplers and loaders for training, evaluation and prediction.

* **Fashion-MNIST** (the default): read from the four gzipped idx files of Debian's
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), from ``data_dir`` (the same files,
  gzipped or not, also in torchvision's ``FashionMNIST/raw`` layout), or — only when the user allows it —
  downloaded by torchvision. 28x28 grey, ``in_chans=1``, meant for ``small_input=True`` models.
  Augmentation (light, suited to 28x28): random crop with 2 px zero padding and a horizontal flip
  (optionally random erasing); evaluation uses the image as is. Normalised with mean 0.2860, std 0.3530.
* **ImageFolder** (ImageNet layout ``ROOT/train/CLASS/*.jpg``, ``ROOT/val/CLASS/*.jpg``): the official
  augmentation — ``RandomResizedCrop(224)`` (scale 0.08-1), ``ColorJitter(0.4, 0.4, 0.4)``, horizontal flip —
  and evaluation by resizing the short side to 256 and centre-cropping 224. Input convention
  ``torchvision`` (RGB in [0, 1], ImageNet mean/std; the default) or ``official`` (BGR, 0-255, no
  normalisation, as the Megvii code and checkpoints).
* **synthetic**: class prototypes plus noise, deterministic, for smoke tests; nothing is read from disk.

**Exact resumption.** Training samples are addressed by ``(epoch, index)`` keys produced by
:class:`EpochSampler` (a :class:`~torch.utils.data.DistributedSampler`), and every random augmentation of a
sample is drawn from a generator seeded by ``(seed, epoch, index)``. Augmentation is therefore the same
whatever the number of loader workers, the process that loads the sample, or where a run was resumed.
"""

from __future__ import annotations

import gzip
import math
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from shufflenet.errors import UserInputError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FMNIST_PAD = 2


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends on ``(seed, epoch, index)`` only (splitmix64-style mixing)."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0xD6E8FEB86659FD93) & (2**64 - 1)
    x ^= x >> 32
    return x & (2**63 - 1)


def _split_key(key: Any) -> tuple[int, int]:
    if isinstance(key, (tuple, list)):
        return int(key[0]), int(key[1])
    return 0, int(key)


# ------------------------------------------------------------------------------------ preprocessing

@dataclass
class Preprocess:
    """How an evaluation/prediction image becomes a tensor; stored in training checkpoints.

    ``kind``: ``fashion-mnist``, ``torchvision``, ``official`` or ``synthetic``. A PIL image is converted to
    grey (``in_chans == 1``) or RGB, its short side resized to ``resize``, centre-cropped to ``image_size``,
    scaled to [0, 1] (times 255 for ``official``, channels reversed to BGR) and normalised with
    ``mean``/``std``.
    """

    kind: str
    image_size: int
    resize: int
    in_chans: int
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    bgr_255: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(**{k: data[k] for k in ("kind", "image_size", "resize", "in_chans", "mean", "std", "bgr_255")
                      if k in data})

    def describe(self) -> str:
        chans = "grey" if self.in_chans == 1 else ("BGR" if self.bgr_255 else "RGB")
        scale = "0-255" if self.bgr_255 else "[0, 1]"
        norm = (f"normalised with mean {self.mean} / std {self.std}" if self.mean else "no mean/std normalisation")
        return f"{chans} {self.image_size}x{self.image_size} ({self.kind}), {scale}, {norm}"

    def pil_transform(self) -> Callable[[Any], torch.Tensor]:
        """The evaluation transform of a PIL image (resize short side, centre crop, tensor, normalise)."""
        from torchvision import transforms as T

        steps: list[Any] = [
            _Convert("L" if self.in_chans == 1 else "RGB"),
            T.Resize(self.resize, interpolation=T.InterpolationMode.BILINEAR),
            T.CenterCrop(self.image_size),
            T.ToTensor(),
        ]
        steps += self.tensor_steps()
        return T.Compose(steps)

    def tensor_steps(self) -> list[Any]:
        from torchvision import transforms as T

        steps: list[Any] = []
        if self.bgr_255:
            steps.append(_ToBGR255())
        if self.mean:
            steps.append(T.Normalize(self.mean, self.std))
        return steps


class _Convert:
    """PIL mode conversion (a class, not a lambda, so loader workers can pickle it)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        if img.mode.startswith("I"):
            img = _to_8bit(img)
        return img.convert(self.mode)


def _to_8bit(img: Any) -> Any:
    """A 16/32-bit integer greyscale image rescaled to 8 bits.

    PIL's own conversion clips such images at 255 instead of rescaling, which turns a 16-bit PNG white.
    Mode ``I;16*`` spans 0-65535; mode ``I`` (how some PIL versions open 16-bit PNGs) is read as 16-bit
    when any value exceeds 255, else as 8-bit already.
    """
    import numpy as np
    from PIL import Image

    arr = np.asarray(img).astype(np.float64)
    if img.mode.startswith("I;16") or arr.max(initial=0) > 255:
        arr = arr / 257.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))  # 2-D uint8: mode L


class _ToBGR255:
    """RGB [0, 1] tensor -> BGR 0-255 (the official Megvii input)."""

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t.flip(0).mul(255.0)


def imagenet_preprocess(image_size: int = 224, convention: str = "torchvision") -> Preprocess:
    resize = int(round(image_size * 256 / 224))
    if convention == "official":
        return Preprocess("official", image_size, resize, 3, [], [], True)
    return Preprocess("torchvision", image_size, resize, 3, list(IMAGENET_MEAN), list(IMAGENET_STD))


def fashion_mnist_preprocess(image_size: int = 28) -> Preprocess:
    return Preprocess("fashion-mnist", image_size, image_size, 1, [FASHION_MNIST_MEAN], [FASHION_MNIST_STD])


# ------------------------------------------------------------------------------------- Fashion-MNIST

def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an idx file (``*-ubyte``, gzipped or not) into a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise UserInputError(f"{path}: cannot read idx file ({exc})") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserInputError(f"{path}: not an unsigned-byte idx file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims)) if dims else 0
    if len(data) - offset != count:
        raise UserInputError(f"{path}: truncated idx file ({len(data) - offset} of {count} bytes)")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for d in (directory, directory / "FashionMNIST" / "raw", directory / "raw"):
        for name in (stem + ".gz", stem):
            if (d / name).is_file():
                return d / name
    return None


def find_fashion_mnist(data_dir: str | None = None, download: bool = False) -> Path:
    """The directory holding the Fashion-MNIST idx files; downloads via torchvision only if allowed."""
    candidates = [Path(data_dir).expanduser()] if data_dir else [DEBIAN_FASHION_MNIST]
    for d in candidates:
        if all(_find_idx(d, stem) for pair in FASHION_MNIST_FILES.values() for stem in pair):
            return d
    if data_dir and not Path(data_dir).expanduser().exists() and not download:
        raise UserInputError(f"data directory not found: {data_dir}")
    if download:
        from torchvision.datasets import FashionMNIST

        root = Path(data_dir).expanduser() if data_dir else Path.home() / ".cache" / "shufflenet" / "data"
        try:
            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
        except Exception as exc:  # network errors of any kind
            raise UserInputError(f"Fashion-MNIST download into {root} failed: {exc}") from None
        return root
    where = data_dir or str(DEBIAN_FASHION_MNIST)
    raise UserInputError(
        f"Fashion-MNIST not found in {where} (install Debian's dataset-fashion-mnist, pass --data-dir "
        "with the four idx files, or allow torchvision's download with --download)")


class FashionMNIST(Dataset):
    """Fashion-MNIST held in memory as uint8; items are ``(1xSxS float tensor, label)``.

    ``train=True`` applies the light augmentation: random crop with 2 px zero padding, horizontal flip
    (p=0.5), optional random erasing — all drawn from a generator seeded by ``(seed, epoch, index)``.
    """

    classes = FASHION_MNIST_CLASSES

    def __init__(self, root: str | os.PathLike[str], split: str = "train", *, train_augment: bool = False,
                 image_size: int = 28, seed: int = 0, random_erasing: float = 0.0) -> None:
        root = Path(root)
        img_stem, lbl_stem = FASHION_MNIST_FILES[split]
        img_path, lbl_path = _find_idx(root, img_stem), _find_idx(root, lbl_stem)
        if img_path is None or lbl_path is None:
            raise UserInputError(f"Fashion-MNIST {split} files not found in {root}")
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserInputError(f"{root}: Fashion-MNIST files have unexpected shapes {images.shape}, {labels.shape}")
        self.images = torch.from_numpy(images.copy())
        self.targets = torch.from_numpy(labels.astype(np.int64))
        self.train_augment = train_augment
        self.image_size = image_size
        self.seed = seed
        self.random_erasing = random_erasing

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, int]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: Sequence[Any]) -> list[tuple[torch.Tensor, int]]:
        """A whole batch at once (the DataLoader calls this): crops and flips by vectorised indexing."""
        pairs = [_split_key(k) for k in keys]
        idx = torch.tensor([i for _, i in pairs], dtype=torch.long)
        if self.train_augment:
            seeds = [sample_seed(self.seed, e, i) for e, i in pairs]
            span = 2 * FMNIST_PAD + 1
            dy = torch.tensor([h % span for h in seeds])
            dx = torch.tensor([(h // span) % span for h in seeds])
            flip = torch.tensor([(h // span // span) % 2 == 1 for h in seeds])
            h, w = self.images.shape[1:]
            padded = torch.nn.functional.pad(self.images[idx], (FMNIST_PAD,) * 4)
            rows = dy[:, None] + torch.arange(h)
            cols = dx[:, None] + torch.arange(w)
            cols = torch.where(flip[:, None], cols.flip(1), cols)
            imgs = padded[torch.arange(len(idx))[:, None, None], rows[:, :, None], cols[:, None, :]]
        else:
            imgs = self.images[idx]
        x = imgs.unsqueeze(1).float().div_(255.0)
        if self.image_size != x.shape[-1]:
            x = torch.nn.functional.interpolate(x, size=(self.image_size,) * 2, mode="bilinear",
                                                align_corners=False, antialias=True)
        x = x.sub_(FASHION_MNIST_MEAN).div_(FASHION_MNIST_STD)
        out = []
        for n, (e, i) in enumerate(pairs):
            xi = x[n]
            if self.train_augment and self.random_erasing > 0:
                g = torch.Generator().manual_seed(sample_seed(self.seed + 1, e, i))
                xi = _random_erase(xi, g, self.random_erasing)
            out.append((xi, int(self.targets[i])))
        return out


def fashion_mnist_images(split: str, count: int, *, spread: bool = False,
                         data_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` Fashion-MNIST images of ``split`` (``"train"`` or ``"val"``, the test split) as one
    normalised ``(N, 1, 28, 28)`` batch and their labels: the first ``count``, or with ``spread`` evenly
    spaced over the split (calibration images that cover every class)."""
    data = FashionMNIST(find_fashion_mnist(data_dir), split)
    count = min(count, len(data))
    step = max(1, len(data) // count) if spread else 1
    items = data.__getitems__(list(range(0, step * count, step)))
    return torch.stack([x for x, _ in items]), torch.tensor([y for _, y in items])


def _random_erase(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """Random erasing (Zhong et al.) with value 0 (the mean after normalisation), scale 0.02-0.33."""
    if float(torch.rand((), generator=g)) >= p:
        return x
    _, h, w = x.shape
    for _ in range(10):
        area = h * w * float(torch.empty(()).uniform_(0.02, 0.33, generator=g))
        ratio = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(1 / 0.3), generator=g)))
        eh, ew = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
        if eh < h and ew < w:
            i = int(torch.randint(0, h - eh + 1, (), generator=g))
            j = int(torch.randint(0, w - ew + 1, (), generator=g))
            x = x.clone()
            x[:, i: i + eh, j: j + ew] = 0.0
            return x
    return x


# ------------------------------------------------------------------------------------------ synthetic

class SyntheticImages(Dataset):
    """Deterministic learnable images: a per-class prototype (4x4 upsampled) plus Gaussian noise.

    ``offset`` shifts the sample indices, so a validation set (another offset) has different noise.
    ``train_augment`` flips horizontally with p=0.5, seeded by ``(seed, epoch, index)``.
    """

    def __init__(self, num_samples: int, num_classes: int = 10, image_size: int = 32, in_chans: int = 3, *,
                 seed: int = 0, offset: int = 0, train_augment: bool = False, noise: float = 0.8) -> None:
        self.num_samples, self.num_classes, self.image_size, self.in_chans = num_samples, num_classes, image_size, in_chans
        self.seed, self.offset, self.train_augment, self.noise = seed, offset, train_augment, noise
        g = torch.Generator().manual_seed(sample_seed(seed, -1, 0))
        protos = torch.randn(num_classes, in_chans, 4, 4, generator=g)
        self.prototypes = torch.nn.functional.interpolate(protos, size=(image_size, image_size), mode="nearest")
        self.classes = [f"class_{i}" for i in range(num_classes)]

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, int]:
        epoch, idx = _split_key(key)
        label = idx % self.num_classes
        g = torch.Generator().manual_seed(sample_seed(self.seed, -2, idx + self.offset))
        x = self.prototypes[label] + self.noise * torch.randn(self.prototypes.shape[1:], generator=g)
        if self.train_augment:
            ga = torch.Generator().manual_seed(sample_seed(self.seed, epoch, idx + self.offset))
            if bool(torch.rand((), generator=ga) < 0.5):
                x = x.flip(-1)
        return x, label


# ---------------------------------------------------------------------------------------- ImageFolder

class SeededTransform(Dataset):
    """Wraps a dataset of PIL images: applies ``transform`` with torch's RNG seeded by ``(seed, epoch,
    index)`` (inside :func:`torch.random.fork_rng`, so the caller's RNG is untouched)."""

    def __init__(self, base: Any, transform: Callable[[Any], torch.Tensor], seed: int = 0) -> None:
        self.base, self.transform, self.seed = base, transform, seed
        self.classes = list(getattr(base, "classes", []))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: Any) -> tuple[torch.Tensor, int]:
        epoch, idx = _split_key(key)
        img, label = self.base[idx]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, idx))
            return self.transform(img), int(label)


def imagefolder_train_transform(pp: Preprocess) -> Callable[[Any], torch.Tensor]:
    """The official training augmentation: RandomResizedCrop, ColorJitter(0.4, 0.4, 0.4), flip."""
    from torchvision import transforms as T

    return T.Compose([
        T.RandomResizedCrop(pp.image_size),
        T.ColorJitter(0.4, 0.4, 0.4),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        *pp.tensor_steps(),
    ])


def _imagefolder_dirs(root: Path) -> tuple[Path, Path | None]:
    if not root.is_dir():
        raise UserInputError(f"data directory not found: {root}")
    train = root / "train" if (root / "train").is_dir() else root
    for name in ("val", "validation", "test"):
        if (root / name).is_dir():
            return train, root / name
    return train, None


def load_image(path: str) -> Any:
    """An image file as RGB PIL; 16-bit greyscale is rescaled (torchvision's loader would clip it white)."""
    from PIL import Image

    with open(path, "rb") as f:
        img = Image.open(f)
        img.load()
    return _Convert("RGB")(img)


def _image_folder(path: Path) -> Any:
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(path), loader=load_image)
    except (FileNotFoundError, OSError) as exc:
        raise UserInputError(f"{path}: not an ImageFolder tree (CLASS/IMAGE files): {exc}") from None


# -------------------------------------------------------------------------------------------- bundles

@dataclass
class DataBundle:
    """What a model needs to know about its data, and the datasets themselves."""

    train: Dataset | None
    val: Dataset | None
    num_classes: int
    in_chans: int
    class_names: list[str]
    preprocess: Preprocess
    small_input: bool
    name: str

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.in_chans, self.preprocess.image_size, self.preprocess.image_size)


class Limited(Dataset):
    """The first ``length`` samples of ``base`` (keys may be ``(epoch, index)`` pairs)."""

    def __init__(self, base: Dataset, length: int) -> None:
        self.base, self.length = base, length
        self.classes = list(getattr(base, "classes", []))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: Any) -> Any:
        _, idx = _split_key(key)
        if not 0 <= idx < self.length:
            raise IndexError(idx)
        return self.base[key]

    def __getattr__(self, name: str) -> Any:
        if name == "__getitems__" and hasattr(self.__dict__.get("base"), "__getitems__"):
            base = self.__dict__["base"]
            return lambda keys: base.__getitems__(keys)
        raise AttributeError(name)


class Indexed(Dataset):
    """The samples ``indices`` of ``base``, renumbered 0..len-1 (keys may be ``(epoch, index)`` pairs).

    Augmentation stays keyed by the *base* index, so a sample is augmented the same way whichever subset
    it is in.
    """

    def __init__(self, base: Dataset, indices: Sequence[int]) -> None:
        self.base, self.indices = base, [int(i) for i in indices]
        self.classes = list(getattr(base, "classes", []))

    def __len__(self) -> int:
        return len(self.indices)

    def _map(self, key: Any) -> Any:
        epoch, idx = _split_key(key)
        if not 0 <= idx < len(self.indices):
            raise IndexError(idx)
        return (epoch, self.indices[idx]) if isinstance(key, (tuple, list)) else self.indices[idx]

    def __getitem__(self, key: Any) -> Any:
        return self.base[self._map(key)]

    def __getitems__(self, keys: Sequence[Any]) -> list[Any]:
        mapped = [self._map(k) for k in keys]
        if hasattr(self.base, "__getitems__"):
            return self.base.__getitems__(mapped)  # type: ignore[attr-defined]
        return [self.base[k] for k in mapped]


HOLDOUT_SEED = 20180730  # fixed, not the run's seed: every run of an ablation holds out the same images


def holdout_split(n: int, holdout: int) -> tuple[list[int], list[int]]:
    """(train indices, held-out indices) of ``n`` training images: a fixed random subset of ``holdout``."""
    if not 0 < holdout < n:
        raise UserInputError(f"holdout must be between 1 and {n - 1} (the training set has {n} images), got {holdout}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(HOLDOUT_SEED)).tolist()
    return sorted(perm[holdout:]), sorted(perm[:holdout])


def _hold_out(train: Dataset | None, train_plain: Dataset, holdout: int) -> tuple[Indexed, Indexed]:
    """Split ``holdout`` images off the training set as the validation set (``train_plain``: un-augmented)."""
    assert train is not None  # build_data refuses holdout without the training data
    keep, held = holdout_split(len(train), holdout)  # type: ignore[arg-type]
    return Indexed(train, keep), Indexed(train_plain, held)


def _limit(ds: Dataset | None, limit: int | None) -> Dataset | None:
    if ds is None or limit is None or limit >= len(ds):  # type: ignore[arg-type]
        return ds
    return Limited(ds, limit)


def build_data(dataset: str, *, data_dir: str | None = None, download: bool = False,
               image_size: int | None = None, input_convention: str = "auto", seed: int = 0,
               want_train: bool = True, want_val: bool = True, val_split: str = "val",
               limit_train: int | None = None, limit_val: int | None = None, random_erasing: float = 0.0,
               synthetic_classes: int = 10, synthetic_train: int = 512, synthetic_val: int = 128,
               synthetic_chans: int = 3, preprocess: Preprocess | None = None,
               holdout: int | None = None) -> DataBundle:
    """Build the training/validation datasets of ``dataset`` (``fashion-mnist``, ``imagefolder``,
    ``synthetic``). ``val_split="train"`` evaluates on the training images (without augmentation).
    ``preprocess`` (ImageFolder) replaces the input convention/sizes derived from the other arguments.
    ``holdout=N`` trains on all but a fixed random N training images and validates on those N
    (un-augmented), so choices made on the validation numbers never see the test set."""
    if holdout and not want_train:
        raise UserInputError("holdout splits the training set: it needs the training data")
    if dataset == "fashion-mnist":
        root = find_fashion_mnist(data_dir, download)
        size = image_size or 28
        train = (FashionMNIST(root, "train", train_augment=True, image_size=size, seed=seed,
                              random_erasing=random_erasing) if want_train else None)
        if holdout:
            train, val = _hold_out(train, FashionMNIST(root, "train", image_size=size), holdout)
        else:
            val = FashionMNIST(root, val_split, image_size=size) if want_val else None
        return DataBundle(_limit(train, limit_train), _limit(val, limit_val), 10, 1, list(FASHION_MNIST_CLASSES),
                          fashion_mnist_preprocess(size), True, dataset)
    if dataset == "synthetic":
        size = image_size or 32
        kw = dict(num_classes=synthetic_classes, image_size=size, in_chans=synthetic_chans, seed=seed)
        train = SyntheticImages(synthetic_train, offset=0, train_augment=True, **kw) if want_train else None
        val_offset = 0 if val_split == "train" else 10**9
        if holdout:
            train, val = _hold_out(train, SyntheticImages(synthetic_train, offset=0, **kw), holdout)
        else:
            val = SyntheticImages(synthetic_val, offset=val_offset, **kw) if want_val else None
        pp = Preprocess("synthetic", size, size, synthetic_chans)
        return DataBundle(_limit(train, limit_train), _limit(val, limit_val), synthetic_classes, synthetic_chans,
                          [f"class_{i}" for i in range(synthetic_classes)], pp, size < 96, dataset)
    if dataset == "imagefolder":
        if not data_dir:
            raise UserInputError("dataset 'imagefolder' needs --data-dir ROOT (with train/ and val/ class folders)")
        train_dir, val_dir = _imagefolder_dirs(Path(data_dir).expanduser())
        if val_split == "train":
            val_dir = train_dir
        size = image_size or 224
        pp = preprocess if preprocess is not None and preprocess.in_chans == 3 else imagenet_preprocess(
            size, "official" if input_convention == "official" else "torchvision")
        size = pp.image_size
        train_base = _image_folder(train_dir) if want_train or val_dir is None else None
        val_base = _image_folder(val_dir) if want_val and val_dir is not None else None
        if not want_train and val_base is None:  # evaluation on a plain class-folder tree
            val_base, train_base = train_base, None
        ref = train_base or val_base
        classes = list(ref.classes) if ref is not None else []
        if train_base is not None and val_base is not None and list(val_base.classes) != classes:
            raise UserInputError(f"{val_dir}: class folders differ from {train_dir}")
        train = SeededTransform(train_base, imagefolder_train_transform(pp), seed) if want_train and train_base else None
        val = SeededTransform(val_base, pp.pil_transform(), seed) if val_base is not None else None
        if holdout:
            train, val = _hold_out(train, SeededTransform(train_base, pp.pil_transform(), seed), holdout)
        return DataBundle(_limit(train, limit_train), _limit(val, limit_val), len(classes), 3, classes, pp,
                          size < 96, dataset)
    raise UserInputError(f"unknown dataset {dataset!r}; choose from fashion-mnist, imagefolder, synthetic")


# ------------------------------------------------------------------------------------------- sampling

class EpochSampler(DistributedSampler):
    """A :class:`DistributedSampler` that yields ``(epoch, index)`` keys and can start mid-epoch.

    ``set_epoch(e)`` reshuffles (seed + epoch, as DistributedSampler); ``set_start(n)`` skips this rank's
    first ``n`` samples of the epoch (a resumed run continues where it stopped, without loading them).
    Works without a process group when ``num_replicas``/``rank`` are given (one process: 1 and 0).
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, *, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = int(start)

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())[self.start:]
        epoch = self.epoch
        return iter([(epoch, i) for i in indices])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``w`` gets indices ``r, r + w, ...`` — every sample exactly once over all ranks (for
    evaluation: no padding, no duplicates)."""

    def __init__(self, length: int, num_replicas: int = 1, rank: int = 0) -> None:
        self.length, self.num_replicas, self.rank = length, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.num_replicas))


def make_loader(dataset: Dataset, batch_size: int, sampler: Sampler, *, workers: int = 0,
                device: torch.device | None = None, drop_last: bool = False,
                generator: torch.Generator | None = None) -> DataLoader:
    """A DataLoader with pinned memory on CUDA and persistent workers; the explicit ``generator`` keeps
    the loader from consuming the global RNG (exact resumption)."""
    cuda = device is not None and device.type == "cuda"
    try:
        workers = min(workers, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        workers = min(workers, os.cpu_count() or 1)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=cuda, drop_last=drop_last, persistent_workers=workers > 0,
                      generator=generator if generator is not None else torch.Generator().manual_seed(0),
                      prefetch_factor=4 if workers > 0 else None,
                      worker_init_fn=_ignore_sigint if workers > 0 else None)


def _ignore_sigint(worker_id: int) -> None:
    """Ctrl-C signals the whole foreground process group: the main process stops the run with a
    checkpoint, and needs its loader workers alive until then (they exit when the loader shuts down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def dataset_classes(ds: Dataset | None) -> Sequence[str]:
    while isinstance(ds, (Subset, Limited)):
        ds = ds.dataset if isinstance(ds, Subset) else ds.base
    return list(getattr(ds, "classes", []))
