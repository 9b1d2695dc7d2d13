"""One process of the distributed check in test_torch_distributed.py (not a test module itself).

    python ddp_worker.py MODULE.py HYPER.json RANK WORLD PORT OUT.npz [--local] [--random]

Runs, on this process's shard of a fixed batch (every process has the same model), ``penalty(...).backward()``
and three ``Memoryless`` steps of the generated torch module, and saves what it got. ``WORLD = 1``: no process
group, the whole batch (the reference). ``--local``: the opt-out, each process on its own shard's derivatives.
``--random``: a random-batch module, the loss given as micro-batches of 4 examples (the reference splits the
whole batch into the shards' micro-batches, so that both see the same ones).
"""

import importlib.util
import json
import os
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
H = 0.02
STEPS = 3
SHARDS, MICRO = 2, 4  # the batch in two shards, each in micro-batches of 4 examples


def problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 3, generator=g)
    Y = torch.sin(X.sum(1, keepdim=True))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    return model, X, Y


def main(path, hyper, rank, world, port, out, local, random):
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.AVERAGE_OVER_PROCESSES = not local
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model, X, Y = problem()
    shards = [torch.arange(len(X))[r::SHARDS] for r in range(SHARDS)]
    rows = shards[rank] if world > 1 else torch.cat(shards)  # equal shards: the whole loss is the mean of theirs
    X, Y = X[rows], Y[rows]

    def losses(out):
        per_example = ((out - Y) ** 2).mean(1)
        return per_example.reshape(-1, MICRO).mean(1) if random else per_example.mean()

    def loss_of(params):
        return losses(torch.func.functional_call(model, params, (X,)))

    results = {}
    if module.penalty.__doc__ and "no potential was found" not in module.penalty.__doc__:
        params = dict(model.named_parameters())
        penalty = module.penalty(params, loss_of, H, **hyper)
        penalty.backward()
        results["penalty"] = penalty.detach().numpy()
        results["penalty_grad"] = torch.cat([q.grad.reshape(-1) for q in model.parameters()]).numpy()
        model.zero_grad()
    optimizer = module.Memoryless(model.parameters(), lr=H, **hyper)
    for _ in range(STEPS):
        optimizer.step(lambda: losses(model(X)))
    results["memoryless"] = torch.cat([q.detach().reshape(-1) for q in model.parameters()]).numpy()
    if rank == 0:
        np.savez(out, **results)
    if world > 1:
        torch.distributed.barrier()  # neither process leaves while the other still talks to it
        torch.distributed.destroy_process_group()
        # gloo's threads can abort the interpreter's teardown ("terminate called without an active exception",
        # 1 run in ~20): the results are saved, so leave without it
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    path, hyper, rank, world, port, out = sys.argv[1:7]
    with open(hyper) as f:
        main(path, json.load(f), int(rank), int(world), int(port), out, "--local" in sys.argv, "--random" in sys.argv)
