"""Per-layer-group gradient activity: gradient L2 norms, update-to-weight ratios and drift, with one host sync.

After fastai's ActivationStats, only scalars are kept. Norms are batched with `torch._foreach_norm` and reduced per
group on the device; the step's loss rides along, so a step costs a single `.tolist()` however many parameters
there are. The update ratio ‖Δw‖/‖w‖ needs a copy of the weights before the optimizer step, so it is sampled every
`ratio_every` steps into preallocated buffers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GradTracker:
    """Measures every layer group of a model around each optimizer step."""

    def __init__(self, params: dict[str, list[nn.Parameter]], ratio_every: int = 1) -> None:
        """Args:
        params: group -> parameters, groups in the order rows should appear.
        ratio_every: sample the update-to-weight ratio every this many steps (0 turns it off).
        """
        self.groups = tuple(params)
        self.params = params
        self.ratio_every = ratio_every
        self._flat = [p for g in self.groups for p in params[g]]
        device = self._flat[0].device if self._flat else torch.device("cpu")
        self._owner = torch.tensor([i for i, g in enumerate(self.groups) for _ in params[g]], dtype=torch.long,
                                   device=device)  # (P,) group index of each parameter
        self._prev: list[torch.Tensor] | None = None  # weights before the sampled step
        self._initial = [p.detach().clone() for p in self._flat]  # for drift
        self._step = 0
        self._sampling = False

    # ---- around the optimizer step ----
    def before_step(self) -> None:
        """Call after backward(), before optimizer.step()."""
        self._sampling = self.ratio_every > 0 and self._step % self.ratio_every == 0
        if self._sampling:
            live = [p.detach() for p in self._flat]
            if self._prev is None:
                self._prev = [t.clone() for t in live]
            else:
                torch._foreach_copy_(self._prev, live)

    def after_step(self, loss: torch.Tensor) -> tuple[float, dict[str, float | None], dict[str, float | None] | None]:
        """Call after optimizer.step(). Returns (loss, grad-norm per group, update ratio per group or None).

        A group whose parameters all have requires_grad=False reports None ("frozen"), not zero.
        """
        G = len(self.groups)
        live = [p for p in self._flat if p.grad is not None]
        sq = torch.zeros(G, device=self._owner.device)
        if live:
            norms = torch.stack(torch._foreach_norm([p.grad for p in live]))  # (P_live,)
            idx = self._owner[[i for i, p in enumerate(self._flat) if p.grad is not None]]
            sq.index_add_(0, idx, norms.float() ** 2)
        parts = [loss.detach().float().reshape(1), sq]
        if self._sampling and self._prev is not None:
            weights = [p.detach() for p in self._flat]
            delta = torch._foreach_sub(weights, self._prev)
            dn = torch.stack(torch._foreach_norm(delta)).float() ** 2  # (P,)
            wn = torch.stack(torch._foreach_norm(weights)).float() ** 2  # (P,)
            parts += [torch.zeros(G, device=sq.device).index_add_(0, self._owner, dn),
                      torch.zeros(G, device=sq.device).index_add_(0, self._owner, wn)]
        values = torch.cat(parts).tolist()  # the one host sync of the step
        self._step += 1
        trainable = [any(p.requires_grad for p in self.params[g]) for g in self.groups]
        grad = {g: (math.sqrt(values[1 + i]) if trainable[i] else None) for i, g in enumerate(self.groups)}
        ratio = None
        if len(values) > 1 + G:
            d, w = values[1 + G: 1 + 2 * G], values[1 + 2 * G:]
            ratio = {g: (math.sqrt(d[i]) / (math.sqrt(w[i]) + 1e-12) if trainable[i] else None)
                     for i, g in enumerate(self.groups)}
        return values[0], grad, ratio

    def drift(self) -> dict[str, float]:
        """Each group's relative distance from its initial (pretrained) weights: ‖w − w₀‖ / ‖w₀‖."""
        with torch.no_grad():
            weights = [p.detach() for p in self._flat]
            dn = torch.stack(torch._foreach_norm(torch._foreach_sub(weights, self._initial))).float() ** 2
            wn = torch.stack(torch._foreach_norm(self._initial)).float() ** 2
            G = len(self.groups)
            d = torch.zeros(G, device=dn.device).index_add_(0, self._owner, dn)
            w = torch.zeros(G, device=dn.device).index_add_(0, self._owner, wn)
            vals = torch.cat([d, w]).tolist()
        return {g: math.sqrt(vals[i]) / (math.sqrt(vals[G + i]) + 1e-12) for i, g in enumerate(self.groups)}
