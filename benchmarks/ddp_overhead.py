"""What the generated torch module's averaging over processes costs under DDP (2 gloo processes, CPU).

On each of 2 processes (the same MLP, each its half of the batch), median seconds over repeats of:
a plain DDP step (forward, ``backward`` with DDP's own gradient all-reduce), heavy ball's
``Memoryless.step`` and ``penalty(...).backward()`` — each with the averaging (the default) and without
(``AVERAGE_OVER_PROCESSES = False``, each process on its own shard). The averaging's overhead is the
difference; plain DDP is the scale.

    python benchmarks/ddp_overhead.py [--repeat 20] [--hidden 256] [--batch 1024]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(rank: int, port: str, module_path: str, repeat: int, hidden: int, batch: int):
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("heavy_ball_torch", module_path)
    t = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t)
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 10))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    X, Y = torch.randn(batch, 64)[rank::2], torch.randn(batch, 10)[rank::2]
    sgd = torch.optim.SGD(ddp.parameters(), lr=1e-3)
    memoryless = t.Memoryless(model.parameters(), lr=1e-3, beta=0.9)

    def loss_of(params):
        return torch.mean((torch.func.functional_call(model, params, (X,)) - Y) ** 2)

    def plain():
        sgd.zero_grad()
        torch.mean((ddp(X) - Y) ** 2).backward()
        sgd.step()

    def step():
        memoryless.step(lambda: torch.mean((model(X) - Y) ** 2))

    def penalty():
        model.zero_grad()
        t.penalty(dict(model.named_parameters()), loss_of, 1e-3, beta=0.9).backward()

    cases = {"plain DDP step": (plain, True)}
    for average in (True, False):
        label = "averaged" if average else "local"
        cases[f"Memoryless.step, {label}"] = (step, average)
        cases[f"penalty + backward, {label}"] = (penalty, average)
    times = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (run, average) in cases.items():
            t.AVERAGE_OVER_PROCESSES = average
            torch.distributed.barrier()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    if rank == 0:
        size = sum(p.numel() for p in model.parameters())
        print(f"2 processes (gloo, CPU), MLP with {size} parameters, batch {batch} split in two, {repeat} repeats")
        base = statistics.median(times["plain DDP step"])
        print(f"{'median':<32} {'s':>8} {'× plain DDP':>12}")
        for name, values in times.items():
            print(f"{name:<32} {statistics.median(values):>8.4f} {statistics.median(values) / base:>12.2f}")
        for what in ("Memoryless.step", "penalty + backward"):
            a, b = (statistics.median(times[f"{what}, {k}"]) for k in ("averaged", "local"))
            print(f"averaging overhead, {what}: {a - b:+.4f} s ({a / b:.2f}×)")
    torch.distributed.barrier()  # neither process leaves while the other still talks to it
    torch.distributed.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--port", help=argparse.SUPPRESS)
    ap.add_argument("--module", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rank is not None:
        return worker(args.rank, args.port, args.module, args.repeat, args.hidden, args.batch)
    import socket

    import memcorr

    folder = tempfile.mkdtemp(prefix="ddp_overhead_")
    module = os.path.join(folder, "heavy_ball_torch.py")
    Path(module).write_text(memcorr.derive("heavy_ball").to_torch(), encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    common = ["--port", port, "--module", module, "--repeat", str(args.repeat)]
    common += ["--hidden", str(args.hidden), "--batch", str(args.batch)]
    processes = [subprocess.Popen([sys.executable, __file__, "--rank", str(r), *common]) for r in range(2)]
    sys.exit(max(p.wait() for p in processes))


if __name__ == "__main__":
    main()
