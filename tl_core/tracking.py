"""Per-layer-group gradient activity: gradient L2 norms, update-to-weight ratios and drift, with one host sync.

After fastai's ActivationStats, only scalars are kept. Norms are batched with `torch._foreach_norm` and reduced per
group on the device; the step's loss rides along, so a step costs a single `.tolist()` however many parameters
there are; the per-group sums of a few dozen floats happen on the host. The update ratio ‖Δw‖/‖w‖ needs a copy of the weights before the optimizer step, so it is sampled every
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
        self._owner_list = self._owner.tolist()

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

    def after_step(self, loss: torch.Tensor, *extra: torch.Tensor
                   ) -> tuple[list[float], dict[str, float | None], dict[str, float | None] | None]:
        """Call after optimizer.step().

        Args:
            loss: The step's loss (a float32 scalar).
            *extra: More float32 scalars to bring to the host in the same sync (e.g. the batch's correct count).

        Returns:
            ([loss, *extra] as floats, grad-norm per group, update ratio per group or None when not sampled).
            A group whose parameters all have requires_grad=False reports None ("frozen"), not zero.
        """
        grads = [p.grad for p in self._flat if p.grad is not None]
        live = [p.grad is not None for p in self._flat]
        scalars = [loss.detach().reshape(()), *(e.detach().reshape(()) for e in extra)]
        scalars += torch._foreach_norm(grads) if grads else []  # one norm per parameter, batched
        sampled = self._sampling and self._prev is not None
        if sampled:
            weights = [p.detach() for p in self._flat]
            scalars += torch._foreach_norm(torch._foreach_sub(weights, self._prev))  # ‖Δw‖ per parameter
            scalars += torch._foreach_norm(weights)  # ‖w‖ per parameter
        values = torch.stack([t.float() if t.dtype != torch.float32 else t for t in scalars]).tolist()  # one sync
        self._step += 1
        k = 1 + len(extra)
        head, it = values[:k], iter(values[k:])
        sq = [0.0] * len(self.groups)
        for owner, has in zip(self._owner_list, live):  # reduce per group on the host: a few dozen floats
            if has:
                sq[owner] += next(it) ** 2
        trainable = [any(p.requires_grad for p in self.params[g]) for g in self.groups]
        grad = {g: (math.sqrt(sq[i]) if trainable[i] else None) for i, g in enumerate(self.groups)}
        ratio = None
        if sampled:
            d, w = [0.0] * len(self.groups), [0.0] * len(self.groups)
            for owner in self._owner_list:
                d[owner] += next(it) ** 2
            for owner in self._owner_list:
                w[owner] += next(it) ** 2
            ratio = {g: (math.sqrt(d[i]) / (math.sqrt(w[i]) + 1e-12) if trainable[i] else None)
                     for i, g in enumerate(self.groups)}
        return head, grad, ratio

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
