"""Bad input on the command line and in the API: one-line errors with exit code 2, outputs that never go over
an input, sizes that cannot overflow, model keywords checked when the model is built, unsafe files refused
without running them, and the help, version and global flags."""

from __future__ import annotations

import json
import os
import pickle
import warnings

import pytest
import torch

from shufflenet.cli.main import build_parser, main
from shufflenet.errors import InvalidCheckpointError, UserInputError, WeightsError, WrongTypeError
from shufflenet.models import create_model, load_weights
from shufflenet.models.weights import read_checkpoint, save_weights

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"num_classes": 10, "in_chans": 1, "small_input": True}
SYNTH = ["--data", "synthetic", "--synthetic-chans", "1", "--synthetic-val", "8", "--workers", "0"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, needle: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny checkpoint of this package (1-channel 28x28 input, 10 classes) and a 28x28 grey PNG."""
    from PIL import Image

    d = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    model = create_model("shufflenet_v2_x0_5", **TINY)
    save_weights(model, d / "model.pt", meta={"model": "shufflenet_v2_x0_5", "model_kwargs": TINY})
    Image.new("L", (28, 28), 128).save(d / "img.png")
    return d


# ----------------------------------------------------------------------------- 1: never over an input

@pytest.mark.parametrize("link", ["same", "hard", "symlink"])
def test_eval_refuses_out_over_its_checkpoint(capsys, ckpt, tmp_path, link) -> None:
    target = ckpt / "model.pt"
    before = target.read_bytes()
    out = {"same": target, "hard": tmp_path / "hard.pt", "symlink": tmp_path / "sym.pt"}[link]
    if link == "hard":
        os.link(target, out)
    elif link == "symlink":
        out.symlink_to(target)
    code, stdout, err = run(capsys, "eval", str(target), "--format", "json", "--out", str(out), *SYNTH)
    assert code == 2 and stdout == ""
    one_line_error(err, "is an input of this command")
    assert target.read_bytes() == before


def test_eval_refuses_confusion_png_over_its_checkpoint(capsys, ckpt) -> None:
    target = ckpt / "model.pt"
    before = target.read_bytes()
    code, _, err = run(capsys, "eval", str(target), "--confusion", str(target), *SYNTH)
    assert code == 2
    one_line_error(err, f"--confusion {target} is an input of this command")
    assert target.read_bytes() == before


def test_predict_refuses_out_over_an_image_or_the_classes_file(capsys, ckpt, tmp_path) -> None:
    img = ckpt / "img.png"
    before = img.read_bytes()
    code, _, err = run(capsys, "predict", "-c", str(ckpt / "model.pt"), str(img), "--out", str(img))
    assert code == 2
    one_line_error(err, f"--out {img} is an input of this command")
    assert img.read_bytes() == before
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    code, _, err = run(capsys, "predict", "-c", str(ckpt / "model.pt"), str(img), "--classes", str(classes),
                       "--out", str(classes))
    assert code == 2 and "is an input of this command" in err
    assert classes.read_text().splitlines()[0] == "c0"


def test_train_refuses_out_over_the_checkpoint_it_resumes(capsys, ckpt) -> None:
    target = ckpt / "model.pt"
    before = target.read_bytes()
    code, _, err = run(capsys, "train", "--resume", str(target), "--out", str(target))
    assert code == 2
    one_line_error(err, "is an input of this command")
    assert target.read_bytes() == before


def test_out_refuses_to_overwrite_a_binary_file_but_rewrites_a_text_result(capsys, ckpt, tmp_path) -> None:
    precious = tmp_path / "weights.pt"
    precious.write_bytes((ckpt / "model.pt").read_bytes())
    code, _, err = run(capsys, "models", "mobilenet_v1_*", "--no-cost", "--out", str(precious))
    assert code == 2
    one_line_error(err, "is not a text file")
    assert precious.read_bytes() == (ckpt / "model.pt").read_bytes()
    result = tmp_path / "models.txt"
    result.write_text("an older result\n")
    assert run(capsys, "models", "mobilenet_v1_*", "--no-cost", "--out", str(result))[0] == 0
    assert "mobilenet_v1_x0_25" in result.read_text()


# ------------------------------------------------------------------ 10: output paths checked up front

@pytest.mark.parametrize("make,argv,needle", [
    ("file", ["guidelines", "g1", "--quick", "--plot-dir", "{p}"], "exists and is not a directory"),
    ("dir", ["profile", "shufflenet_v2_x0_5", "--plot", "{p}"], "is a directory, not a file"),
    ("dir", ["models", "--no-cost", "--out", "{p}"], "is a directory, not a file"),
    ("file", ["models", "--no-cost", "--out", "{p}/x.json"], "is a file, not a directory"),
    (None, ["models", "--no-cost", "--out", "/proc/no-such-dir/x.json"], "cannot create files in /proc"),
    (None, ["profile", "shufflenet_v2_x0_5", "--plot", "{p}.png", "--out", "{p}.png"], "name the same file"),
])
def test_bad_output_paths_fail_before_any_work(capsys, tmp_path, monkeypatch, make, argv, needle) -> None:
    import sys

    import shufflenet.guidelines.runner  # noqa: F401
    import shufflenet.measure.profile  # noqa: F401

    def no_work(*a, **k):
        raise AssertionError("the command ran before its output path was checked")

    monkeypatch.setattr(sys.modules["shufflenet.guidelines.runner"], "run_guidelines", no_work)
    monkeypatch.setattr(sys.modules["shufflenet.measure.profile"], "profile", no_work)
    p = tmp_path / "thing"
    if make == "file":
        p.write_text("x")
    elif make == "dir":
        p.mkdir()
    code, _, err = run(capsys, *[a.replace("{p}", str(p)) for a in argv])
    assert code == 2
    one_line_error(err, needle)


def test_eval_unwritable_confusion_is_an_error_before_the_evaluation(capsys, ckpt, monkeypatch) -> None:
    import sys

    monkeypatch.setattr(sys.modules["shufflenet.train.evaluate"], "run_eval", lambda cfg: pytest.fail("evaluated before checking --confusion"))
    code, _, err = run(capsys, "eval", str(ckpt / "model.pt"), "--confusion", "/proc/no-such-dir/cm.png", *SYNTH)
    assert code == 2
    one_line_error(err, "cannot write --confusion /proc/no-such-dir/cm.png")
    code, _, err = run(capsys, "eval", str(ckpt / "model.pt"), "--confusion", "cm.json", *SYNTH)
    assert code == 2
    one_line_error(err, "give a .png file name")


def test_out_into_a_missing_directory_is_created(capsys, tmp_path) -> None:
    dest = tmp_path / "new" / "dir" / "m.csv"
    assert run(capsys, "models", "mobilenet_v1_*", "--no-cost", "--out", str(dest))[0] == 0
    assert dest.read_text().splitlines()[0].startswith("name,")


# ----------------------------------------------------------------------- 6, 12: unreadable checkpoints

def test_empty_file_and_directory_are_invalid_checkpoints(capsys, tmp_path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for bad, needle in ((empty, r"empty file \(0 bytes\)"), (tmp_path, "is a directory")):
        with pytest.raises(InvalidCheckpointError, match=needle) as info:
            load_weights(create_model("shufflenet_v2_x0_5"), bad)
        assert isinstance(info.value, WeightsError) and isinstance(info.value, UserInputError)
    img = tmp_path / "img.png"
    img.write_bytes(b"\x89PNG\r\n\x1a\n")
    for argv in (["eval", str(empty)], ["predict", "-c", str(empty), str(img)]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        one_line_error(err, "empty file (0 bytes), not a checkpoint")


def test_resume_from_an_empty_file_is_bad_input(capsys, tmp_path) -> None:
    empty = tmp_path / "last.pt"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "--quiet", "train", "--resume", str(empty), "-o", str(tmp_path / "run"))
    assert code == 2
    one_line_error(err, "empty file (0 bytes)")


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("kind", ["pickle4", "pickle0", "torch-zip-protocol4"])
def test_code_running_pickles_are_refused_unrun_and_without_torch_warnings(capsys, tmp_path, kind) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    obj = {"state_dict": _Payload(str(marker))}
    if kind == "torch-zip-protocol4":
        torch.save(obj, path, pickle_protocol=4)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=4 if kind == "pickle4" else 0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InvalidCheckpointError, match="refused") as info:
            read_checkpoint(path)
    assert not caught, [str(w.message) for w in caught]
    assert "mkdir" in str(info.value)
    code, _, err = run(capsys, "eval", str(path))
    assert code == 2
    one_line_error(err, "refused")
    assert not marker.exists()


def test_plain_pickle_without_code_is_not_a_checkpoint_and_legacy_torch_files_still_load(tmp_path) -> None:
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"fc.weight": [1.0, 2.0]}, protocol=4))
    with pytest.raises(InvalidCheckpointError, match="a plain Python pickle, not a torch checkpoint"):
        read_checkpoint(plain)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(3.0)}, legacy, _use_new_zipfile_serialization=False)
    assert read_checkpoint(legacy)["w"].tolist() == [0.0, 1.0, 2.0]


# ------------------------------------------------------------------------- 14: wrong argument types

def test_api_argument_types_raise_the_package_error() -> None:
    with pytest.raises(WrongTypeError, match=r"create_model\(\): name must be a model name \(str\), got NoneType"):
        create_model(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"load_weights\(\): model must be a torch.nn.Module, got str "
                                        r"'shufflenet_v2_x0_5' \(build it first"):
        load_weights("shufflenet_v2_x0_5", "w.pt")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match=r"read_checkpoint\(\): path must be a file path"):
        read_checkpoint(3)  # type: ignore[arg-type]
    from shufflenet.models._checks import require_module

    model = create_model("shufflenet_v2_x0_5")
    assert require_module(model) is model
    with pytest.raises(WrongTypeError, match=r"count_cost\(\): model must be a torch.nn.Module, got str"):
        require_module("shufflenet_v2_x0_5", "model", "count_cost")


# --------------------------------------------------------------- 8, 13: model keywords checked at build

@pytest.mark.parametrize("name,kwargs,needle", [
    ("shufflenet_v2_x0_5", {"shuffle_impl": "6d"}, "unknown shuffle_impl '6d'; choose from 5d, 4d"),
    ("shufflenet_v2_x0_5", {"layout": "tv"}, "unknown layout 'tv'"),
    ("shufflenet_v2_x0_5", {"se": "yes"}, "se must be True or False, got 'yes'"),
    ("shufflenet_v2_x0_5", {"num_classes": 0}, "num_classes must be an integer from 1 to"),
    ("shufflenet_v2_x0_5", {"num_classes": True}, "num_classes must be an integer"),
    ("shufflenet_v2_x0_5", {"in_chans": 1.5}, "in_chans must be an integer"),
    ("shufflenet_v2_x0_5", {"drop_rate": float("nan")}, "drop_rate must be a finite number >= 0 and < 1"),
    ("shufflenet_v2_x0_5", {"layuot": "official"}, "has no keyword 'layuot'; did you mean 'layout'?"),
    ("shufflenet_v1_g3_x1_0", {"shuffle_impl": "6d"}, "unknown shuffle_impl '6d'"),
    ("shufflenet_v1_g3_x1_0", {"shuffle_order": "x"}, "unknown shuffle_order 'x'"),
    ("shufflenet_v1_g3_x1_0", {"width_mult": 2.0}, "width_mult is fixed by the model"),
    ("mobilenet_v1_x1_0", {"small_input": 1}, "small_input must be True or False"),
    ("torchvision:mobilenet_v2", {"width_mult": "abc"}, "torchvision:mobilenet_v2: width_mult must be a finite number"),
    ("torchvision:mobilenet_v2", {"width_mult": -1.0}, "width_mult must be a finite number > 0"),
    ("torchvision:resnet18", {"num_classes": "abc"}, "torchvision:resnet18: num_classes must be an integer"),
    ("torchvision:resnet18", {"zero_init_residual": 1}, "zero_init_residual must be True or False"),
    ("torchvision:resnet18", {"fooo": 1}, "torchvision:resnet18 has no keyword 'fooo'"),
    ("torchvision:resnet18", {"groups": 0}, "torchvision:resnet18 cannot be built with groups=0"),
])
def test_model_keywords_are_checked_when_the_model_is_built(name, kwargs, needle) -> None:
    with pytest.raises(UserInputError, match=needle.replace("(", r"\(").replace("?", r"\?")) as info:
        create_model(name, **kwargs)
    assert str(info.value).startswith(name)


def test_shuffle_modules_check_their_impl() -> None:
    from shufflenet.models.layers import ChannelShuffle
    from shufflenet.models.shufflenet_v2 import ShuffleSplit

    for build in (lambda: ChannelShuffle(2, "6d"), lambda: ShuffleSplit("6d")):  # type: ignore[arg-type]
        with pytest.raises(UserInputError, match="unknown shuffle_impl"):
            build()
    assert create_model("shufflenet_v2_x0_5", shuffle_impl="4d", **TINY)(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_model_keyword_errors_in_the_cli(capsys) -> None:
    for argv, needle in ((["-m", "shuffle_impl=6d"], "unknown shuffle_impl '6d'"),
                         (["--model-arg", "se=yes"], "se must be True or False")):
        code, _, err = run(capsys, "cost", "shufflenet_v2_x0_5", "--input", "64", *argv)
        assert code == 2
        one_line_error(err, needle)
    code, _, err = run(capsys, "cost", "torchvision:mobilenet_v2", "-m", "width_mult=abc")
    assert code == 2
    one_line_error(err, "torchvision:mobilenet_v2: width_mult must be a finite number > 0, got 'abc'")


# ---------------------------------------------------------------------- 7, 15, 17: sizes and counts

def test_parse_input_size_forms_and_bounds() -> None:
    from shufflenet.cli._common import parse_input_size

    assert parse_input_size("224") == (1, 3, 224, 224)
    assert parse_input_size("3x192x160") == (1, 3, 192, 160)
    assert parse_input_size("8x3x224x224") == (8, 3, 224, 224)
    with pytest.raises(UserInputError, match="height H = 99999999999999999999 is more than 65536"):
        parse_input_size("1x3x99999999999999999999x224")
    with pytest.raises(UserInputError, match="more than 2,147,483,647"):
        parse_input_size("64x3x8192x8192")
    with pytest.raises(UserInputError, match="malformed"):
        parse_input_size("3x224")


def test_bench_accepts_chw_with_the_batch_from_batch() -> None:
    from shufflenet.cli.bench import _inputs

    assert _inputs(["3x224x224", "2x3x96x96", "160"]) == [((3, 224, 224), None), ((3, 96, 96), 2),
                                                          ((3, 160, 160), None)]


@pytest.mark.parametrize("argv,needle", [
    (["cost", "shufflenet_v2_x0_5", "--input", "1x3x99999999999999999999x224"], "is more than 65536"),
    (["cost", "shufflenet_v2_x0_5", "--num-classes", "99999999999999999999"], "argument --num-classes"),
    (["bench", "shufflenet_v2_x0_5", "--batch", "99999999999999999999"], "batch sizes must be <= 65536"),
    (["bench", "shufflenet_v2_x0_5", "--wait-idle", "-5"], "argument --wait-idle: expected a finite number >= 0"),
    (["bench", "shufflenet_v2_x0_5", "--wait-idle", "nan"], "argument --wait-idle"),
    (["bench", "shufflenet_v2_x0_5", "--min-run-time", "0"], "argument --min-run-time"),
    (["bench", "shufflenet_v2_x0_5", "--warmup", "-1"], "argument --warmup"),
    (["profile", "shufflenet_v2_x0_5", "--repeats", "99999999999999999999"], "argument --repeats"),
    (["guidelines", "g1", "--batch", "99999999999999999999"], "argument --batch"),
    (["guidelines", "g1", "--rounds", "99999999999999999999"], "argument --rounds"),
    (["predict", "-c", "x.pt", "i.png", "--image-size", "99999999999999999999"], "argument --image-size"),
    (["predict", "-c", "x.pt", "i.png", "-k", "99999999999999999999"], "argument -k/--topk"),
    (["eval", "x.pt", "--batch-size", "99999999999999999999"], "argument --batch-size"),
    (["eval", "x.pt", "--workers", "99999"], "argument --workers"),
    (["eval", "x.pt", "--synthetic-chans", "0"], "argument --synthetic-chans"),
])
def test_out_of_range_numbers_are_usage_errors(capsys, argv, needle) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    one_line_error(err, needle)


def test_predict_refuses_a_classes_file_of_the_wrong_length(capsys, ckpt, tmp_path) -> None:
    classes = tmp_path / "three.txt"
    classes.write_text("a\nb\nc\n")
    code, out, err = run(capsys, "predict", "-c", str(ckpt / "model.pt"), str(ckpt / "img.png"),
                         "--classes", str(classes))
    assert code == 2 and out == ""
    one_line_error(err, "has 3 names but the model has 10 outputs")
    classes.write_text("".join(f"n{i}\n" for i in range(10)))
    code, out, err = run(capsys, "predict", "-c", str(ckpt / "model.pt"), str(ckpt / "img.png"),
                         "--classes", str(classes), "--format", "json", "-k", "10")
    assert code == 0, err
    labels = {t["label"] for t in json.loads(out)["predictions"][0]["top"]}
    assert labels == {f"n{i}" for i in range(10)}


# ---------------------------------------------------------------- 16: the format follows --out's name

@pytest.mark.parametrize("suffix,check", [
    (".json", lambda t: json.loads(t)["models"][0]["name"] == "mobilenet_v1_x0_25"),
    (".csv", lambda t: t.splitlines()[0].startswith("name,paper MFLOPs")),
    (".txt", lambda t: "\nModels (4)" in t and not t.lstrip().startswith("{")),
    (".out", lambda t: "\nModels (4)" in t and not t.lstrip().startswith("{")),
])
def test_format_is_inferred_from_the_out_extension(capsys, tmp_path, suffix, check) -> None:
    dest = tmp_path / f"models{suffix}"
    assert run(capsys, "models", "mobilenet_v1_*", "--no-cost", "--out", str(dest))[0] == 0
    assert check(dest.read_text())


def test_format_contradicting_the_extension_is_refused(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "models", "--no-cost", "--format", "csv", "--out", str(tmp_path / "x.json"))
    assert code == 2
    one_line_error(err, "--format csv contradicts the extension of")
    assert not (tmp_path / "x.json").exists()
    assert build_parser().parse_args(["train", "--out", "r.json"]).format == "json"  # train's parser too
    assert build_parser().parse_args(["models", "--format", "json", "--out", "r.txt"]).format == "json"


# ------------------------------------------------------------- 18, 25, 26: global flags, version, help

def test_debug_and_quiet_work_before_and_after_the_subcommand(capsys) -> None:
    for argv in (["--quiet", "models", "x*"], ["models", "x*", "--quiet"]):
        assert build_parser().parse_args(argv).quiet is True
    assert build_parser().parse_args(["models"]).quiet is False
    code, _, err = run(capsys, "cost", "shufflenet_v2_x0_5", "--input", "1x3x16x16", "--debug")
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("shufflenet: error: ShuffleNetV2 needs inputs of at least")


def test_version(capsys) -> None:
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"shufflenet {version('shufflenet')}"


def test_help_is_for_users_without_rst_and_shows_defaults(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "ShuffleNet V2 and V1 built exactly to the papers" in out and "examples:" in out
    assert "entry point" not in out  # not the module's developer docstring
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "``" not in text and ":class:" not in text, name
    train_help = " ".join(sub.choices["train"].format_help().split())
    assert "--epochs EPOCHS default: 30" in train_help
    assert "--num-classes N classifier outputs, equal to the dataset's class count (default: that count)" in train_help
    assert "(default: 1000)" in " ".join(sub.choices["cost"].format_help().split())
    assert "(default: 1000)" not in sub.choices["eval"].format_help()
    assert "--by {layer,op,stage} grouping of the rows (default: layer)" in " ".join(
        sub.choices["cost"].format_help().split())
