"""Per-layer-group gradient activity: gradient L2 norms, update-to-weight ratios and drift, with one host sync.

After fastai's ActivationStats, only scalars are kept. Norms are batched with `torch._foreach_norm`; the step's loss
rides along, so a step costs a single `.tolist()` however many parameters there are, and the per-group sums of a few
dozen floats happen on the host; large tensors use a BLAS dot product, faster than a norm on the CPU. Frozen parameters cost nothing: they have no gradient, they cannot move, so their
update ratio is None and their drift exactly 0; drift from pretrained weights reads the shared pretrained model
instead of a copy. The update ratio ‖Δw‖/‖w‖ needs a copy of the trainable weights before the optimizer step, so it
is sampled every `ratio_every` steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn


_DOT_FROM = 1 << 18  # tensors this large get a BLAS dot product (faster than foreach_norm on the CPU)


def _squared_norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """‖t‖² of each tensor as 0-d tensors, without a host sync or a copy (see _norms for the cheaper form)."""
    parts, squared = _norms(tensors)
    return [p if sq else p.float().square() for p, sq in zip(parts, squared)]


def _norms(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[bool]]:
    """For each tensor a 0-d tensor that is either its norm (batched foreach_norm: small tensors) or its squared norm
    (a BLAS dot product over its storage: large dense tensors, faster on the CPU), and whether it is squared.
    Squaring happens on the host, after the step's one sync, so no op is spent per tensor."""
    small = [i for i, t in enumerate(tensors) if t.numel() < _DOT_FROM or not _dense(t)]
    out: list[torch.Tensor | None] = [None] * len(tensors)
    squared = [True] * len(tensors)
    for i, n in zip(small, torch._foreach_norm([tensors[i] for i in small]) if small else []):
        out[i], squared[i] = n, False
    for i, t in enumerate(tensors):
        if out[i] is None:  # every element once, in storage order: a view, whatever the memory format
            flat = t.as_strided((t.numel(),), (1,), t.storage_offset())
            out[i] = torch.dot(flat, flat)
    return out, squared


def _dense(t: torch.Tensor) -> bool:
    return t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last))


class GradTracker:
    """Measures every layer group of a model around each optimizer step."""

    def __init__(self, params: dict[str, list[nn.Parameter]], ratio_every: int = 1,
                 reference: dict[int, torch.Tensor] | None = None) -> None:
        """Args:
        params: group -> parameters, groups in the order rows should appear.
        ratio_every: sample the update-to-weight ratio every this many steps (0 turns it off).
        reference: id(parameter) -> a tensor holding its initial value that nobody will change (e.g. the shared
            pretrained model's), so drift needs no copy of it; other parameters are copied before they first train.
        """
        self.groups = tuple(params)
        self.params = params
        self.ratio_every = ratio_every
        self._flat = [p for g in self.groups for p in params[g]]
        self._owner = [i for i, g in enumerate(self.groups) for _ in params[g]]  # group index of each parameter
        self._reference = reference or {}
        self._initial: dict[int, torch.Tensor] = {}  # parameter index -> its value before it first trained
        self._trainable: list[int] = []  # indices of parameters that train now
        self._flags: tuple[bool, ...] = ()
        self._group_trainable: list[bool] = [False] * len(self.groups)
        self._with_grad: list[int] = []  # parameters with a gradient this step
        self._grad_parts: tuple[list[torch.Tensor], list[bool]] = ([], [])
        self._prev: list[torch.Tensor] = []  # trainable weights before a sampled step
        self._step = 0
        self._sampling = False

    def _refresh_trainable(self) -> None:
        """Notice groups that started training (gradual unfreezing) and remember their weights before the first
        update: a frozen parameter has not moved, so that is its initial value."""
        flags = tuple(p.requires_grad for p in self._flat)
        if flags == self._flags:
            return
        self._flags = flags
        self._trainable = [i for i, f in enumerate(flags) if f]
        self._group_trainable = [any(p.requires_grad for p in self.params[g]) for g in self.groups]
        for i in self._trainable:
            if i not in self._initial:
                ref = self._reference.get(id(self._flat[i]))
                self._initial[i] = ref if ref is not None else self._flat[i].detach().clone()

    # ---- around the optimizer step ----
    def before_step(self) -> None:
        """Call after backward(), before optimizer.step(): measures the gradients (no host sync yet)."""
        self._refresh_trainable()
        self._sampling = self.ratio_every > 0 and self._step % self.ratio_every == 0 and bool(self._trainable)
        if self._sampling:  # a copy only for the sampled step, freed right after it
            self._prev = [self._flat[i].detach().clone() for i in self._trainable]
        # Gradient norms now, while backward's gradients are still in cache (the optimizer reads them next).
        flat = self._flat
        self._with_grad = [i for i in self._trainable if flat[i].grad is not None]  # frozen parameters have none
        self._grad_parts = _norms([flat[i].grad for i in self._with_grad])

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
        with_grad = self._with_grad
        scalars = [loss.detach().reshape(()), *(e.detach().reshape(()) for e in extra)]
        squared = [True] * len(scalars)  # loss and extras pass through as they are (see below)
        parts, sq_flags = self._grad_parts  # one per parameter, from before_step
        scalars += parts
        squared += sq_flags
        sampled = self._sampling and bool(self._prev)
        if sampled:
            weights = [self._flat[i].detach() for i in self._trainable]
            for tensors in (torch._foreach_sub(weights, self._prev), weights):  # ‖Δw‖ and ‖w‖ per parameter
                parts, sq_flags = _norms(tensors)
                scalars += parts
                squared += sq_flags
            self._prev = []
        values = torch.stack([t if t.dtype == torch.float32 else t.float() for t in scalars]).tolist()  # one sync
        values = [v if sq else v * v for v, sq in zip(values, squared)]  # norms² and squared norms alike
        self._step += 1
        k = 1 + len(extra)
        head, it = values[:k], iter(values[k:])
        n_groups = len(self.groups)
        sq = [0.0] * n_groups
        for i in with_grad:  # reduce per group on the host: a few dozen floats
            sq[self._owner[i]] += next(it)
        trainable = self._group_trainable
        grad = {g: (math.sqrt(sq[j]) if trainable[j] else None) for j, g in enumerate(self.groups)}
        ratio = None
        if sampled:
            d, w = [0.0] * n_groups, [0.0] * n_groups
            for i in self._trainable:
                d[self._owner[i]] += next(it)
            for i in self._trainable:
                w[self._owner[i]] += next(it)
            ratio = {g: (math.sqrt(d[j]) / (math.sqrt(w[j]) + 1e-12) if trainable[j] else None)
                     for j, g in enumerate(self.groups)}
        return head, grad, ratio

    def drift(self) -> dict[str, float]:
        """Each group's relative distance from its initial (pretrained) weights: ‖w − w₀‖ / ‖w₀‖ (0 if it never
        trained)."""
        n_groups = len(self.groups)
        d, w = [0.0] * n_groups, [0.0] * n_groups
        idx = list(self._initial)
        if idx:
            with torch.no_grad():
                start = [self._initial[i].to(self._flat[i].device) for i in idx]
                now = [self._flat[i].detach() for i in idx]
                sq = torch.stack([t.float() for t in (*_squared_norms(torch._foreach_sub(now, start)),
                                                      *_squared_norms(start))]).tolist()
            for k, i in enumerate(idx):
                d[self._owner[i]] += sq[k]
                w[self._owner[i]] += sq[len(idx) + k]
        return {g: (math.sqrt(d[j]) / (math.sqrt(w[j]) + 1e-12) if w[j] else 0.0) for j, g in enumerate(self.groups)}
