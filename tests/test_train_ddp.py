"""DistributedDataParallel on CPU: a real 2-process gloo run launched by torchrun.

What holds, and is tested here:

* Without BatchNorm, a 2-process run equals a 1-process run of the same global batch (a small CNN): the
  data sharding, gradient averaging, recipe and schedule are the same code either way.
* With BatchNorm (ShuffleNet V2 0.5x), each rank normalises with the statistics of its own part of the
  batch, so the run does **not** equal a 1-process run of the same global batch (checked: the weights
  differ). It equals, up to float rounding, a 1-process run whose BN layers normalise each of the ranks'
  sub-batches separately ("ghost" batch norm of the per-rank batch size) and average the sub-batches'
  statistics into the running ones, which is what the engine does across ranks after every step (timm's
  ``distribute_bn``, reduce mode).
* Every rank ends with bitwise-identical parameters and buffers, with and without the final BN
  recalibration; only rank 0 writes the metrics.
* A signal that reaches one rank stops every rank after the same step, with a checkpoint that resumes
  the 2-process run exactly (bitwise).
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

WORKER = textwrap.dedent('''
    import json, os, signal, sys
    import torch
    from torch import nn
    torch.set_num_threads(1)
    import shufflenet.train.engine as engine
    from shufflenet.train import TrainConfig, train
    from shufflenet.train.engine import TrainingInterrupted

    COMMON = dict(dataset="synthetic", image_size=16, synthetic_train=96, synthetic_val=24, batch_size=16,
                  epochs=2, workers=0, device="cpu", progress=False, verbose=False, seed=0)
    BN = dict(model="shufflenet_v2_x0_5", lr=0.2, bn_recalibrate_steps=2, **COMMON)

    def tiny_cnn():
        torch.manual_seed(123)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    class GhostBN(nn.BatchNorm2d):
        # BN over `ghosts` interleaved sub-batches: DDP rank r gets samples r, r + w, ... of each global
        # batch. Each sub-batch is normalised with its own statistics; the running statistics move by the
        # mean of the sub-batches' (unbiased) statistics, as the engine averages them over ranks.
        ghosts = 2

        def forward(self, x):
            if not self.training:
                return super().forward(x)
            parts = [x[g::self.ghosts] for g in range(self.ghosts)]
            outs = [nn.functional.batch_norm(p, None, None, self.weight, self.bias, True, 0.0, self.eps)
                    for p in parts]
            with torch.no_grad():
                mean = torch.stack([p.mean((0, 2, 3)) for p in parts]).mean(0)
                var = torch.stack([p.var((0, 2, 3), unbiased=True) for p in parts]).mean(0)
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var, alpha=m)
            return torch.stack(outs, 1).flatten(0, 1)

    def with_model_hook(change):
        real = engine.build_model

        def build(cfg, data):
            return change(real(cfg, data))
        engine.build_model = build
        return real

    def ghost(model):
        for m in model.modules():
            if type(m) is nn.BatchNorm2d:
                m.__class__ = GhostBN
        return model

    def run_single(out, ghosted):
        real = with_model_hook(ghost if ghosted else (lambda m: m))
        out = os.path.join(out, "ghost" if ghosted else "plain")
        try:
            train(TrainConfig(output_dir=out, **{**BN, "stop_after_steps": 1}))
        finally:
            engine.build_model = real
        return torch.load(os.path.join(out, "last.pt"), weights_only=True)

    def signal_rank1_at(step):
        def change(model):
            calls = [0]

            def hook(mod, inp):
                if mod.training:
                    calls[0] += 1
                    if calls[0] == step and os.environ.get("RANK") == "1":
                        os.kill(os.getpid(), signal.SIGTERM)  # rank 0 gets no signal
            model.register_forward_pre_hook(hook)
            return model
        return change

    def run(out, with_bn=True):
        rank = os.environ.get("RANK", "0")
        r = train(TrainConfig(model="tiny_cnn", output_dir=os.path.join(out, "nobn"), lr=0.4,
                              bn_recalibrate=False, **COMMON), model=tiny_cnn())
        torch.save(r.model.state_dict(), os.path.join(out, f"nobn_rank{rank}.pt"))
        if with_bn:
            r = train(TrainConfig(output_dir=os.path.join(out, "bn_step1"), **{**BN, "stop_after_steps": 1}))
            torch.save(r.model.state_dict(), os.path.join(out, f"bn_step1_rank{rank}.pt"))
            r = train(TrainConfig(output_dir=os.path.join(out, "bn"), **BN))
            torch.save(r.model.state_dict(), os.path.join(out, f"bn_rank{rank}.pt"))
            assert r.world_size == int(os.environ.get("WORLD_SIZE", "1"))
            cut = TrainConfig(output_dir=os.path.join(out, "bn_cut"), **BN)
            real = with_model_hook(signal_rank1_at(9))
            try:
                train(cut)
                raise AssertionError("the signal did not stop the run")
            except TrainingInterrupted as exc:
                info = {"message": str(exc), "signum": exc.signum, "checkpoint": exc.checkpoint}
            finally:
                engine.build_model = real
            with open(os.path.join(out, f"cut_rank{rank}.json"), "w") as f:
                json.dump(info, f)
            r = train(TrainConfig(output_dir=cut.output_dir, resume=os.path.join(cut.output_dir, "last.pt"), **BN))
            torch.save(r.model.state_dict(), os.path.join(out, f"bn_cut_rank{rank}.pt"))

    if __name__ == "__main__":
        run(sys.argv[1])
''')


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    script = out / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its two workers: no orphans left behind
        _, err = proc.communicate()
        pytest.fail(f"the 2-process run did not finish in 180 s:\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return out, script


def _load(path):
    return torch.load(path, weights_only=True)


def test_ranks_hold_identical_weights(ddp_run) -> None:
    out, _ = ddp_run
    # bn_step1 (one step, no final recalibration): the BN buffers are identical only because the engine
    # averages the running statistics over ranks; each rank updates them from its own half-batch
    for kind in ("nobn", "bn", "bn_step1", "bn_cut"):
        r0, r1 = _load(out / f"{kind}_rank0.pt"), _load(out / f"{kind}_rank1.pt")
        assert r0.keys() == r1.keys()
        assert all(torch.equal(r0[k], r1[k]) for k in r0), [k for k in r0 if not torch.equal(r0[k], r1[k])][:5]


def test_ddp_matches_one_process_with_the_same_global_batch(ddp_run, tmp_path) -> None:
    out, script = ddp_run
    n = torch.get_num_threads()
    try:
        runpy.run_path(str(script), run_name="single")["run"](str(tmp_path), with_bn=False)
    finally:
        torch.set_num_threads(n)
    single, ddp = _load(tmp_path / "nobn_rank0.pt"), _load(out / "nobn_rank0.pt")
    init = runpy.run_path(str(script), run_name="single")["tiny_cnn"]().state_dict()
    for k in single:
        moved = (single[k] - init[k]).abs().max().item()
        assert moved > 1e-3, f"{k} barely trained ({moved}); the comparison would be vacuous"
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-5, msg=k)


def test_only_rank_0_writes(ddp_run) -> None:
    out, _ = ddp_run
    for kind in ("nobn", "bn"):
        lines = (out / kind / "metrics.csv").read_text().splitlines()
        assert len(lines) == 3 and lines[1].startswith("1,") and lines[2].startswith("2,")
        run = (out / kind / "run.json").read_text()
        assert '"world_size": 2' in run and '"per_rank_batch": 8' in run
    ck = torch.load(out / "bn" / "last.pt", weights_only=True)
    assert ck["train"]["world_size"] == 2 and len(ck["train"]["rng"]) == 2


def _single(script, out, ghosted):
    n = torch.get_num_threads()
    try:
        return runpy.run_path(str(script), run_name="single")["run_single"](str(out), ghosted)
    finally:
        torch.set_num_threads(n)


def test_bn_ddp_step_equals_one_process_with_ghost_bn_not_plain_bn(ddp_run, tmp_path) -> None:
    """One optimizer step from the same weights: parameters, gradients (SGD's first momentum buffer is the
    gradient) and the averaged running statistics. Over many steps the comparison would be meaningless at
    this scale: tiny-batch BN amplifies float rounding (a different thread count alone moves the weights of
    the 1-process run by ~1e-3 after two steps)."""
    out, script = ddp_run
    ddp = torch.load(out / "bn_step1" / "last.pt", weights_only=True)
    ghost = _single(script, tmp_path, ghosted=True)
    plain = _single(script, tmp_path, ghosted=False)
    assert ddp["train"]["step"] == ghost["train"]["step"] == 1 and ddp["train"]["world_size"] == 2

    def tensors(ck):
        state = ck["state_dict"]
        grads = {f"grad{i}": s["momentum_buffer"] for i, s in ck["train"]["optimizer"]["state"].items()}
        return {**{k: v for k, v in state.items() if v.is_floating_point()}, **grads}

    d, g, p = tensors(ddp), tensors(ghost), tensors(plain)
    assert len(d) > 250 + 150  # 281 float tensors of the model, 168 gradients
    for k in d:  # float rounding, relative to each tensor's scale (some gradients are ~1e-9)
        scale = d[k].abs().max().item()
        assert (g[k] - d[k]).abs().max().item() <= 1e-3 * scale + 1e-7, k
    counts = [k for k in ddp["state_dict"] if k.endswith("num_batches_tracked")]
    assert counts and all(torch.equal(ghost["state_dict"][k], ddp["state_dict"][k]) for k in counts)
    # ... and not the step of a 1-process run of the same global batch with ordinary BN
    sizable = [k for k in d if d[k].abs().max().item() > 1e-5]
    differ = [k for k in sizable if (p[k] - d[k]).abs().max().item() > 0.05 * d[k].abs().max().item()]
    assert len(differ) > len(sizable) // 2, (len(differ), len(sizable))


def test_signal_on_one_rank_stops_both_after_the_same_step_and_resumes_exactly(ddp_run) -> None:
    out, _ = ddp_run
    infos = [json.loads((out / f"cut_rank{r}.json").read_text()) for r in (0, 1)]
    for info in infos:
        assert info["signum"] == signal.SIGTERM and info["checkpoint"].endswith("bn_cut/last.pt")
        assert "interrupted (SIGTERM) at epoch 2, step 9/12" in info["message"]
        assert "the same torchrun command with --resume" in info["message"]
    ck = torch.load(out / "bn_cut" / "last.pt", weights_only=True)
    assert ck["train"]["finished"] and ck["train"]["world_size"] == 2
    full, resumed = _load(out / "bn_rank0.pt"), _load(out / "bn_cut_rank0.pt")
    assert all(torch.equal(full[k], resumed[k]) for k in full), [k for k in full if not torch.equal(full[k], resumed[k])][:5]
