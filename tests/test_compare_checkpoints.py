"""``benchmarks/compare_checkpoints.py``: exact McNemar p-values, paired counts and CI, end to end on checkpoints."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from shufflenet.train import EvalConfig, TrainConfig, run_eval, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _load_script():
    path = Path(__file__).parents[1] / "benchmarks" / "compare_checkpoints.py"
    spec = importlib.util.spec_from_file_location("compare_checkpoints_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cmp = _load_script()


def test_mcnemar_exact_p_values() -> None:
    assert cmp.mcnemar_exact_p(0, 0) == 1.0
    assert cmp.mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024)
    assert cmp.mcnemar_exact_p(9, 1) == pytest.approx(2 * 11 / 1024)  # C(10,0) + C(10,1)
    assert cmp.mcnemar_exact_p(5, 5) == 1.0  # capped
    assert cmp.mcnemar_exact_p(3, 7) == cmp.mcnemar_exact_p(7, 3)
    with pytest.raises(ValueError):
        cmp.mcnemar_exact_p(-1, 2)


def test_paired_summary_counts_and_interval() -> None:
    a = torch.tensor([1, 1, 0, 0, 1], dtype=torch.bool)
    b = torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool)
    s = cmp.paired_summary(a, b)
    assert (s["both_right"], s["only_a_right"], s["only_b_right"], s["both_wrong"]) == (1, 2, 1, 1)
    assert s["top1_a"] == pytest.approx(60.0) and s["top1_b"] == pytest.approx(40.0)
    assert s["difference_points"] == pytest.approx(20.0)
    half = 100 * 1.96 * math.sqrt((3 / 5 - 0.2**2) / 5)
    assert s["difference_ci95_points"] == pytest.approx([20.0 - half, 20.0 + half])
    assert s["mcnemar_exact_p"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        cmp.paired_summary(a, b[:3])


def test_compare_two_checkpoints_end_to_end(tmp_path) -> None:
    runs = []
    for lr in (0.1, 0.02):  # seed 0 for both: the synthetic images depend on the seed, and must be shared
        out = tmp_path / f"lr{lr}"
        cfg = TrainConfig(model="shufflenet_v2_x0_5", dataset="synthetic", image_size=16, synthetic_train=64,
                          synthetic_val=128, synthetic_chans=1, batch_size=16, epochs=1, workers=0, device="cpu",
                          lr=lr, seed=0, progress=False, verbose=False, output_dir=str(out))
        train(cfg)
        runs.append(out / "model.pt")
    res_path = tmp_path / "cmp.json"
    assert cmp.main([str(runs[0]), str(runs[1]), "--dataset", "synthetic", "--out", str(res_path)]) == 0
    r = json.loads(res_path.read_text())
    assert r["images"] == 128 and r["split"] == "test"  # the synthetic evaluation set
    assert "environment" in r and r["command"].startswith("compare_checkpoints.py ")
    assert r["both_right"] + r["only_a_right"] + r["only_b_right"] + r["both_wrong"] == 128
    # Each side's accuracy is the same number `shufflenet eval` reports on those images.
    for key, ck in (("top1_a", runs[0]), ("top1_b", runs[1])):
        rep = run_eval(EvalConfig(checkpoint=str(ck), dataset="synthetic", device="cpu", workers=0, progress=False,
                                  confusion_png=None))
        assert r[key] == pytest.approx(rep.result.top1)
    same = cmp.compare(str(runs[0]), str(runs[0]), dataset="synthetic")
    assert same["only_a_right"] == same["only_b_right"] == 0 and same["mcnemar_exact_p"] == 1.0


def test_comparison_renders_through_the_package_renderer(capsys, tmp_path) -> None:
    """The printed table and every --out format come from shufflenet.render (the result contract)."""
    from shufflenet.render import render

    r = {"a": {"checkpoint": "A/model.pt", "model": "m1"}, "b": {"checkpoint": "B/model.pt", "model": "m2"},
         "dataset": "synthetic", "split": "test",
         **cmp.paired_summary(torch.tensor([1, 1, 0, 1], dtype=torch.bool), torch.tensor([1, 0, 0, 0], dtype=torch.bool))}
    result = cmp.PairedComparison(r)
    assert render(result, "csv").splitlines()[0].startswith("images,top1_a,top1_b,both_right,only_a_right")
    text = render(result, "table")
    assert "McNemar exact p" in text and "75.00" in text and "A/model.pt" in text
    assert json.loads(render(result, "json")) == r
    assert "| 75.00 |" in render(result, "md")


@pytest.mark.parametrize("name", ["compare_checkpoints.py", "train_fashion_mnist.py"])
def test_benchmarks_use_only_the_public_api(name) -> None:
    import ast

    tree = ast.parse((Path(__file__).parents[1] / "benchmarks" / name).read_text(encoding="utf-8"))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in modules if m.startswith(("shufflenet.cli", "shufflenet._io"))}


def test_missing_checkpoint_is_a_one_line_error(tmp_path, capsys) -> None:
    assert cmp.main([str(tmp_path / "nope.pt"), str(tmp_path / "nope2.pt"), "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
