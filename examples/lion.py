"""A small reference implementation of bias-corrected soft-sign Lion (``lion_softsign_bc.opt``).

It is the truth the trajectory example compares memcorr's generated maps with, written from the
update rule as a ``torch.optim.Optimizer`` the way torch's own optimizers are.
"""

from __future__ import annotations

import torch


class SoftSignLion(torch.optim.Optimizer):
    def __init__(self, params, lr, beta1=0.9, beta2=0.99, eps=0.01, wd=0.0):
        super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, wd=wd))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2, eps = group["beta1"], group["beta2"], group["eps"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state["n"], state["m"] = 0, torch.zeros_like(p)
                n, m, g = state["n"], state["m"], p.grad
                c = (b1 * m + (1 - b1) * g) / (1 - b1 * b2**n)
                p.sub_(group["lr"] * (c / torch.sqrt(c * c + eps) + group["wd"] * p))
                m.mul_(b2).add_(g, alpha=1 - b2)
                state["n"] = n + 1
