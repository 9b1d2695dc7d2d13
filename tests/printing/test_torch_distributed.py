"""The generated torch module under distributed training (gloo, 2 processes on localhost, CPU).

Two processes, each with the same model and half of a batch, run ``penalty(...).backward()`` and three
``Memoryless`` steps (full batches, and heavy ball's random-batch module with its micro-batch noise estimate);
one process runs them on the whole batch. With the averaging (the default) the
two agree to 1e-10 in float64; with the opt-out (``AVERAGE_OVER_PROCESSES = False``) each process
uses its own half, and they differ: the test can fail.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, derived, short_memory

pytest.importorskip("torch")
import torch.distributed

if not torch.distributed.is_available():
    pytest.skip("this torch has no torch.distributed", allow_module_level=True)

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(module, hyper, world, folder, local=False, random=False):
    """The worker on ``world`` processes; what rank 0 saved."""
    out = folder / f"out_{world}_{local}.npz"
    port = str(free_port())
    args = [str(module), str(hyper), "RANK", str(world), port, str(out)]
    args += (["--local"] if local else []) + (["--random"] if random else [])
    processes = [
        subprocess.Popen([sys.executable, str(WORKER), *[str(rank) if a == "RANK" else a for a in args]])
        for rank in range(world)
    ]
    codes = [p.wait(timeout=300) for p in processes]
    assert codes == [0] * world, f"the workers exited with {codes}"
    return dict(np.load(out))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, batches",
    [("heavy_ball", "full"), ("adamw", "full"), ("lion_softsign", "full"), ("heavy_ball", "random")],
)
def test_two_processes_with_half_a_batch_each_equal_one_with_the_whole(name, batches, tmp_path):
    """With random batches each process's micro-batches join the noise estimate: 2 × 2 of them equal the
    4 of the whole batch."""
    d = derived(ROOT / "derivations" / f"{name}.opt", batches=batches)
    module = tmp_path / f"{name}_torch.py"
    module.write_text(d.to_torch(), encoding="utf-8")
    hyper = tmp_path / "hyper.json"
    hyper.write_text(json.dumps(short_memory(d)), encoding="utf-8")
    random = batches == "random"
    whole = run(module, hyper, 1, tmp_path, random=random)
    shared = run(module, hyper, 2, tmp_path, random=random)
    alone = run(module, hyper, 2, tmp_path, local=True, random=random)
    has_penalty = d.perturbation.potential is not None
    assert set(whole) == {"memoryless"} | ({"penalty", "penalty_grad"} if has_penalty else set())
    for key, value in whole.items():
        scale = max(1.0, np.abs(value).max())
        assert np.abs(shared[key] - value).max() <= 1e-10 * scale, key
        assert np.abs(alone[key] - value).max() > 1e-6 * scale, f"{key}: the opt-out should differ"
