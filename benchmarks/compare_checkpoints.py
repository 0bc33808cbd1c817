"""Paired comparison of two trained checkpoints on the same images: is one really better?

Two accuracies on one test set differ by chance; the standard error of a single accuracy near 93% on
10 000 images is about 0.25 points, which swamps most of the differences an ablation produces. Scoring
both models on the *same* images and counting only the images on which they disagree is far more
sensitive (McNemar's test): if model A alone is right on ``n10`` images and model B alone on ``n01``,
then under "no difference" ``n10`` is Binomial(n10 + n01, 1/2). This script reports both accuracies,
the four agreement counts, the exact two-sided McNemar p-value, and the accuracy difference with its
95% confidence interval (paired, normal approximation).

    python benchmarks/compare_checkpoints.py A/model.pt B/model.pt --holdout 10000 \
        --out benchmarks/results/compare_holdout10000_x0_5_e30_wd5e-4_vs_wd4e-5.json

``--holdout N`` scores the fixed held-out training images that ``shufflenet train --holdout N`` validated
on (so a choice made from it never sees the test set); without it, the test split is used.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import torch
from torch.utils.data import DataLoader

from shufflenet.result import Column, ResultBase, Table

MCNEMAR = ("paired on the same images: McNemar's exact two-sided p = 2 P(X <= min(only A, only B)), "
           "X ~ Binomial(only A + only B, 1/2); A - B with a 95% CI (normal approximation of the paired "
           "difference), in points of top-1 %")


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: 2 * P(X <= min) for X ~ Binomial(only_a + only_b, 1/2), capped at 1."""
    if only_a < 0 or only_b < 0:
        raise ValueError("counts must be non-negative")
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_summary(correct_a: torch.Tensor, correct_b: torch.Tensor) -> dict[str, Any]:
    """Agreement counts, accuracies (%), their difference A - B with a 95% CI (points) and McNemar's p."""
    if correct_a.shape != correct_b.shape or correct_a.dim() != 1 or correct_a.numel() == 0:
        raise ValueError("need two equal-length, non-empty 1-D boolean vectors")
    a, b = correct_a.bool(), correct_b.bool()
    n = a.numel()
    both, neither = int((a & b).sum()), int((~a & ~b).sum())
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    diff = (only_a - only_b) / n
    # Variance of the mean of the per-image difference d_i in {-1, 0, 1}.
    var = ((only_a + only_b) / n - diff**2) / n
    half = 1.96 * math.sqrt(max(var, 0.0))
    return {
        "images": n, "top1_a": 100.0 * (both + only_a) / n, "top1_b": 100.0 * (both + only_b) / n,
        "both_right": both, "only_a_right": only_a, "only_b_right": only_b, "both_wrong": neither,
        "difference_points": 100.0 * diff, "difference_ci95_points": [100.0 * (diff - half), 100.0 * (diff + half)],
        "mcnemar_exact_p": mcnemar_exact_p(only_a, only_b),
    }


def correct_vector(model: torch.nn.Module, dataset: Any, batch: int = 500) -> torch.Tensor:
    """Whether ``model``'s top-1 prediction is right, image by image, in dataset order."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    out = []
    model.eval()
    with torch.inference_mode():
        for x, y in loader:
            out.append(model(x).argmax(1) == y)
    return torch.cat(out)


def compare(checkpoint_a: str, checkpoint_b: str, *, dataset: str = "fashion-mnist", data_dir: str | None = None,
            holdout: int | None = None, synthetic_train: int = 512) -> dict[str, Any]:
    """Score both checkpoints on the same images and summarise them as a pair (see the module docstring)."""
    from shufflenet.errors import UserInputError
    from shufflenet.train.data import build_data
    from shufflenet.train.evaluate import load_model_for_inference

    a = load_model_for_inference(checkpoint_a)
    b = load_model_for_inference(checkpoint_b)
    if a.preprocess != b.preprocess:
        raise UserInputError(f"the checkpoints expect different inputs ({a.preprocess} vs {b.preprocess}); "
                             "a paired comparison needs the same images for both")
    data = build_data(dataset, data_dir=data_dir, image_size=a.preprocess.image_size, holdout=holdout,
                      want_train=bool(holdout), synthetic_train=synthetic_train,
                      synthetic_chans=a.preprocess.in_chans)
    if data.val is None:
        raise UserInputError(f"dataset {dataset!r} has no evaluation split here")
    summary = paired_summary(correct_vector(a.model, data.val), correct_vector(b.model, data.val))
    split = f"{holdout} held-out training images" if holdout else "test"
    return {"a": {"checkpoint": checkpoint_a, "model": a.name}, "b": {"checkpoint": checkpoint_b, "model": b.name},
            "dataset": dataset, "split": split, **summary}


class PairedComparison(ResultBase):
    """:func:`compare`'s dict as a result of the package's contract, so that :mod:`shufflenet.render`
    prints it and writes it (JSON, CSV, Markdown, HTML by ``--out``'s extension)."""

    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary

    def to_dict(self) -> dict[str, Any]:
        return self.summary

    def tables(self) -> list[Table]:
        r = self.summary
        lo, hi = r["difference_ci95_points"]
        pair = {k: r[k] for k in ("images", "top1_a", "top1_b", "both_right", "only_a_right", "only_b_right",
                                  "both_wrong", "difference_points")}
        pair.update(ci95_low=lo, ci95_high=hi, mcnemar_exact_p=r["mcnemar_exact_p"])
        cols = [Column("images"), Column("top1_a", "A top-1", "%", ".2f"), Column("top1_b", "B top-1", "%", ".2f"),
                Column("both_right", "both right"), Column("only_a_right", "only A right"),
                Column("only_b_right", "only B right"), Column("both_wrong", "both wrong"),
                Column("difference_points", "A - B", "points", "+.2f"),
                Column("ci95_low", "95% CI low", "points", "+.2f"), Column("ci95_high", "95% CI high", "points", "+.2f"),
                Column("mcnemar_exact_p", "McNemar exact p", fmt=".3f")]
        models = [{"side": side, **r[side.lower()]} for side in ("A", "B")]
        return [Table(f"{r['dataset']} ({r['split']}), {r['images']} images: A vs B", cols, [pair], key="pair"),
                Table("the checkpoints", [Column("side"), Column("checkpoint"), Column("model")], models,
                      key="checkpoints")]

    def conventions(self) -> list[str]:
        return [MCNEMAR]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint_a")
    p.add_argument("checkpoint_b")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "imagefolder", "synthetic"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--holdout", type=int, default=None, help="score the fixed N held-out training images")
    p.add_argument("--out", default=None,
                   help="also write the result (atomically; .json, .csv, .md or .html by the extension)")
    args = p.parse_args(argv)
    from shufflenet.errors import ShuffleNetError
    from shufflenet.render import render, write_result

    try:
        result = compare(args.checkpoint_a, args.checkpoint_b, dataset=args.dataset, data_dir=args.data_dir,
                         holdout=args.holdout)
    except ShuffleNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result["command"] = "compare_checkpoints.py " + " ".join(sys.argv[1:] if argv is None else argv)
    comparison = PairedComparison(result)
    print(render(comparison, "table"))
    if args.out:
        try:
            write_result(comparison, args.out)
        except (ShuffleNetError, OSError) as e:
            print(f"error: cannot write {args.out}: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
