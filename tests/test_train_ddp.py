"""DistributedDataParallel on CPU: a real 2-process gloo run launched by torchrun.

* Equivalence with one process at the same global batch is checked on a small CNN **without
  BatchNorm**: with BN, each rank normalises its own half-batch, so DDP and one process legitimately
  differ (PyTorch's SyncBatchNorm does not run on CPU, and eval-mode BN barely trains from the official
  initialisation). The data sharding, gradient averaging, recipe and schedule are the same code either way.
* ShuffleNet V2 with ordinary BN is trained too: both ranks must hold bitwise-identical parameters and
  buffers (DDP broadcasts rank 0's BN buffers; the final BN recalibration averages the statistics over
  ranks), and only rank 0 writes the metrics.
"""

from __future__ import annotations

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
    import os, sys
    import torch
    from torch import nn
    torch.set_num_threads(1)
    from shufflenet.train import TrainConfig, train

    COMMON = dict(dataset="synthetic", image_size=16, synthetic_train=96, synthetic_val=24, batch_size=16,
                  epochs=2, workers=0, device="cpu", progress=False, verbose=False, seed=0)

    def tiny_cnn():
        torch.manual_seed(123)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

    def run(out, with_bn=True):
        rank = os.environ.get("RANK", "0")
        r = train(TrainConfig(model="tiny_cnn", output_dir=os.path.join(out, "nobn"), lr=0.4,
                              bn_recalibrate=False, **COMMON), model=tiny_cnn())
        torch.save(r.model.state_dict(), os.path.join(out, f"nobn_rank{rank}.pt"))
        if with_bn:
            r = train(TrainConfig(model="shufflenet_v2_x0_5", output_dir=os.path.join(out, "bn"), lr=0.2,
                                  bn_recalibrate_steps=2, **COMMON))
            torch.save(r.model.state_dict(), os.path.join(out, f"bn_rank{rank}.pt"))
            assert r.world_size == int(os.environ.get("WORLD_SIZE", "1"))

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
    for kind in ("nobn", "bn"):
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
