"""The trainer: turns a Plan and labelled tensors into a run, streaming per-step and per-epoch records.

A run builds the model the plan describes (fresh, or a copy of the pretrained source), freezes its groups, and,
when a frozen prefix can never change (no augmentation, no gradual unfreezing, BatchNorm kept in eval), computes
that prefix's features once and trains only the rest. It can be cancelled from another thread, stops with a
clear reason when the loss becomes NaN or infinite, and is deterministic on the CPU for a given seed.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tl_core.models import networks as models
from tl_core.training.device import select_device
from tl_core.models.features import cpu_bf16_supported, extract_features
from tl_core.training.freeze import GroupedModel, build_optimizer, freeze, next_to_thaw, set_train_mode, thaw
from tl_core.data.datasets import TensorData
from tl_core.jobs.progress import Cancelled
from tl_core.training.plan import Plan
from tl_core.training.records import EpochRecord, Evaluation, EventRecord, Record, RunResult, StartRecord, StepRecord
from tl_core.training.tracking import GradTracker


class Diverged(Exception):
    """Raised inside the loop when the loss stops being finite."""


def pretrained_base(arch: str) -> nn.Module:
    """The shared, read-only pretrained model for an architecture (never train it; the trainer copies it).

    Raises:
        ValueError: (tl_core.models.weights.WeightsUnavailable) if ImageNet weights are not on this machine.
    """
    if arch == "shapesnet":
        from tl_core.models.source import load_source_model

        return load_source_model().model
    from tl_core.models.weights import load_imagenet_model

    return load_imagenet_model(arch)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 1/10 of the side, per image. x: (B, C, H, W)."""
    b = x.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(-1), x)
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * 0.2  # in [-1, 1] grid units: ±10% of the side
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def evaluate(logits: torch.Tensor, y: torch.Tensor, classes: tuple[str, ...], top_k: int = 12) -> Evaluation:
    """Accuracy, loss, per-class accuracy, confusion matrix and the top-loss examples.

    Args:
        logits: (N, C) model outputs.
        y: (N,) true classes.
        classes: Class names.
        top_k: How many worst examples to keep.
    """
    c = len(classes)
    losses = F.cross_entropy(logits, y, reduction="none")  # (N,)
    probs = logits.softmax(1)
    pred = probs.argmax(1)  # (N,)
    confusion = torch.bincount(y * c + pred, minlength=c * c).view(c, c)  # [true][pred]
    per_true = confusion.sum(1).clamp(min=1)
    per_class = (confusion.diag() / per_true).tolist()
    order = losses.argsort(descending=True)[:top_k].tolist()
    pred_l, y_l, loss_l, prob_l = pred.tolist(), y.tolist(), losses.tolist(), probs.max(1).values.tolist()
    top = [{"index": i, "loss": loss_l[i], "true": classes[y_l[i]], "pred": classes[pred_l[i]], "prob": prob_l[i]}
           for i in order if pred_l[i] != y_l[i]]
    n = max(len(y_l), 1)
    return Evaluation(accuracy=sum(int(a == b) for a, b in zip(pred_l, y_l)) / n,
                      loss=float(losses.mean()) if len(y_l) else float("nan"),
                      per_class={classes[i]: per_class[i] for i in range(c)}, confusion=confusion.tolist(),
                      top_losses=top, classes=tuple(classes))


def _bn_stats(gm: GroupedModel) -> dict[str, torch.Tensor]:
    """Each group's BatchNorm running means and variances, concatenated (a copy)."""
    out = {}
    for g, mods in gm.modules.items():
        stats = [t.detach().float().flatten() for mod in mods for m in mod.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
                 for t in (m.running_mean, m.running_var)]
        if stats:
            out[g] = torch.cat(stats).clone()
    return out


def _relative_change(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖after − before‖ / ‖before‖ per key, in one host sync."""
    keys = list(before)
    if not keys:
        return {}
    vals = torch.stack([torch.stack([(after[k] - before[k]).norm(), before[k].norm()]) for k in keys]).tolist()
    return {k: d / (b + 1e-12) for k, (d, b) in zip(keys, vals)}


def schedule_for(plan: Plan, n_train: int) -> tuple[int, int]:
    """(epochs, steps per epoch) a plan runs on n_train images: epochs are raised to reach plan.min_steps.

    A trailing batch of a single image is dropped (it would break BatchNorm), so it is not a step.
    """
    steps_per_epoch = max(1, n_train // plan.batch_size + (1 if n_train % plan.batch_size > 1 else 0))
    return max(plan.epochs, math.ceil(plan.min_steps / steps_per_epoch)), steps_per_epoch


@dataclass
class BuiltModel:
    """A model made for a plan, seen through its layer groups, with the plan's freezing applied."""

    model: nn.Module  # the whole model (a cut model for the early classifier)
    chain: list[models.Stage]  # its forward pass as stages
    side: dict[str, nn.Module]  # side branches outside the chain (Inception's aux head), by group
    grouped: GroupedModel  # parameters and modules per group, and which groups are frozen


def build_for_plan(plan: Plan, n_classes: int, data_size: int, base: nn.Module | None = None) -> BuiltModel:
    """Make the model a plan describes and freeze its groups (nothing is trained yet).

    Args:
        plan: A valid plan.
        n_classes: Outputs of the new head.
        data_size: Side length of the input images (to size an early cut's head).
        base: The pretrained model to copy (default: the architecture's shared pretrained model).

    Returns:
        The model, its stage chain and its grouped view, on the CPU.
    """
    torch.manual_seed(plan.seed)
    if plan.pretrained:
        model = copy.deepcopy(base if base is not None else pretrained_base(plan.arch))
        models.replace_head(model, plan.arch, n_classes)
    else:
        model = models.build_model(plan.arch, n_classes)
    model.requires_grad_(True)  # the shared base may carry flags; freezing is applied from the plan alone
    if plan.strategy == "early_classifier":
        model = models.cut_model(model, plan.arch, plan.cut_after, n_classes, data_size)
        chain, side = models.cut_stages(model), {}
    else:
        chain, side = models.stages(model, plan.arch), models._side_branches(model, plan.arch)
    params: dict[str, list[nn.Parameter]] = OrderedDict()
    modules: dict[str, list[nn.Module]] = OrderedDict()
    for st in chain:
        if st.group is not None:
            params.setdefault(st.group, []).extend(st.module.parameters())
            modules.setdefault(st.group, []).append(st.module)
    for g, m in side.items():
        params.setdefault(g, []).extend(m.parameters())
        modules.setdefault(g, []).append(m)
    params = OrderedDict((g, params[g]) for g in plan.groups if g in params)
    gm = GroupedModel(model, params, modules, bn_policy=plan.bn_policy)
    freeze(gm, [g for g in plan.frozen if g in params])
    return BuiltModel(model, chain, side, gm)


class Trainer:
    """One run of one plan. Use `train(...)` for the common case."""

    def __init__(self, plan: Plan, train_data: TensorData, val_data: TensorData, *, base: nn.Module | None = None,
                 on_record: Callable[[Record], None] | None = None, cancel: threading.Event | None = None,
                 ratio_every: int | None = None, keep_weights: bool = True, cache_frozen: bool = True,
                 max_val_evals: int = 10) -> None:
        """Args:
        plan: What to train.
        train_data / val_data: Labelled tensors with the same classes.
        base: The pretrained model to start from (copied, never modified); default: the architecture's
            shared pretrained model. Ignored by the scratch strategy.
        on_record: Called with every record, from the training thread.
        cancel: Set it from any thread to stop at the next step.
        ratio_every: Sample the update-to-weight ratio every n steps (default: every 5th step for models
            under one million parameters, else every 20th; it needs a copy of the weights).
        keep_weights: Return the trained state_dict (for download).
        cache_frozen: Compute a never-changing frozen prefix once (turn off only to measure what it saves).
        max_val_evals: Validate after at most this many evenly spaced epochs (always after the last).
        """
        n_classes = len(train_data.classes)
        plan.validate_for_data(len(train_data), n_classes)
        if tuple(val_data.classes) != tuple(train_data.classes):
            raise ValueError("Training and validation data must have the same classes in the same order.")
        if len(val_data) == 0:
            raise ValueError("The validation set is empty; hold out at least one image per class.")
        self.plan, self.train_data, self.val_data = plan, train_data, val_data
        self.base, self.on_record, self.cancel = base, on_record, cancel or threading.Event()
        self.ratio_every, self.keep_weights = ratio_every, keep_weights
        self.cache_frozen, self.max_val_evals = cache_frozen, max(1, max_val_evals)
        self.result = RunResult(status="running", reason="", plan=plan.to_dict(), groups=(), frozen=tuple(plan.frozen))

    # ---- helpers ----
    def _emit(self, rec: Record) -> None:
        if isinstance(rec, StepRecord):
            self.result.steps.append(rec)
        elif isinstance(rec, EpochRecord):
            self.result.epochs.append(rec)
        elif isinstance(rec, EventRecord):
            self.result.events.append(rec)
        if self.on_record is not None:
            self.on_record(rec)

    # ---- the run ----
    def run(self) -> RunResult:
        plan, res = self.plan, self.result
        t0 = time.perf_counter()
        device = select_device(plan.device)
        res.device = str(device)
        classes = self.train_data.classes
        data_size = int(self.train_data.x.shape[-1])
        base = (self.base if self.base is not None else pretrained_base(plan.arch)) if plan.pretrained else None
        built = build_for_plan(plan, len(classes), data_size, base=base)
        model, chain, gm = built.model, built.chain, built.grouped
        side = built.side
        res.groups = gm.groups
        res.total_params = models.count_params(model)

        # Inputs: resize and normalise once, on the device.
        pre = models.preprocess_for(plan.arch, data_size, aux=plan.trains_aux).to(device)
        model.to(device)
        use_cuda = device.type == "cuda"
        model.to(memory_format=torch.channels_last)  # faster convolutions on CUDA and on the CPU alike
        amp_dtype = torch.bfloat16 if use_cuda and torch.cuda.is_bf16_supported() else torch.float16

        def autocast():
            return torch.autocast(device_type="cuda", dtype=amp_dtype) if use_cuda else contextlib.nullcontext()

        def prepare(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                out = torch.cat([pre(x[i:i + 512].to(device)) for i in range(0, x.shape[0], 512)])
            return out.contiguous(memory_format=torch.channels_last)

        x_train, y_train = prepare(self.train_data.x), self.train_data.y.to(device)
        x_val, y_val = prepare(self.val_data.x), self.val_data.y.to(device)

        # The frozen prefix that can never change is computed once.
        cacheable = self.cache_frozen and not plan.augment and plan.unfreeze_every == 0 and plan.bn_policy == "eval" \
            and not (side and not all(g in gm.frozen for g in side))
        prefix: list[models.Stage] = []
        if cacheable:
            for st in chain[:-1]:
                if st.group is None or st.group in gm.frozen:
                    prefix.append(st)
                else:
                    break
        if any(st.group is not None for st in prefix):
            body = nn.Sequential(*[st.module for st in prefix]).eval()
            heavy = plan.spec.torchvision
            self._emit(EventRecord(f"Computing the frozen layers' features of {len(x_train) + len(x_val)} images "
                                   f"once{' (bf16)' if heavy and device.type == 'cpu' and cpu_bf16_supported() else ''}."))
            x_train = extract_features(body, x_train, batch_size=64 if heavy else 256, heavy=heavy)
            x_val = extract_features(body, x_val, batch_size=64 if heavy else 256, heavy=heavy)
            net = nn.Sequential(*[st.module for st in chain[len(prefix):]])
            res.cached_prefix = tuple(st.group for st in prefix if st.group is not None)
            self._emit(EventRecord(f"Computed the frozen {', '.join(res.cached_prefix)} features once "
                                   f"({len(x_train) + len(x_val)} images); training runs on the cache."))
        else:
            net = model
        res.trainable_params = models.count_params(model, trainable_only=True)

        optimizer = build_optimizer(gm, plan)
        use_scaler = use_cuda and amp_dtype == torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        ratio_every = self.ratio_every if self.ratio_every is not None else (
            5 if res.total_params < 1_000_000 else 20)
        start = dict(base.named_parameters()) if base is not None else {}  # shared, never changed: drift's reference
        reference = {id(p): start[n] for n, p in model.named_parameters() if n in start and start[n].shape == p.shape}
        tracker = GradTracker(gm.params, ratio_every=ratio_every, reference=reference)
        bn_start = _bn_stats(gm)
        gen = torch.Generator().manual_seed(plan.seed + 1)
        n = len(y_train)
        batch = plan.batch_size
        epochs, steps_per_epoch = schedule_for(plan, n)
        if epochs > plan.epochs:
            self._emit(EventRecord(f"{n} images make {steps_per_epoch} step(s) per epoch; running {epochs} epochs "
                                   f"instead of {plan.epochs} so training gets at least {plan.min_steps} steps."))
        total_steps = epochs * steps_per_epoch
        val_every = max(1, math.ceil(epochs / self.max_val_evals))  # validation is not free on tiny data

        def lr_factor(step: int) -> float:
            if plan.schedule == "constant":
                return 1.0
            return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))

        self._emit(StartRecord(total_steps=total_steps, epochs=epochs, groups=gm.groups, frozen=tuple(sorted(
            gm.frozen, key=gm.groups.index)), cached=res.cached_prefix))
        explode_at = 100 * math.log(max(len(classes), 2))  # 100x a uniform guess, or the first loss if larger
        step = 0
        halved = False
        val_logits = torch.empty(0)
        try:
            for epoch in range(epochs):
                thawed: tuple[str, ...] = ()
                if plan.unfreeze_every and epoch > 0 and epoch % plan.unfreeze_every == 0:
                    g = next_to_thaw(gm)
                    if g is not None:
                        thaw(gm, optimizer, g)
                        thawed = (g,)
                        self._emit(EventRecord(f"Epoch {epoch + 1}: unfroze {g}."))
                set_train_mode(gm)  # the suffix `net` shares its modules with `model`
                perm = torch.randperm(n, generator=gen).to(device)
                loss_sum, correct, seen, pos = 0.0, 0.0, 0, 0
                while pos < n:
                    idx = perm[pos:pos + batch]
                    if len(idx) == 1 and n > 1:  # a batch of one breaks BatchNorm; drop the remainder
                        break
                    if self.cancel.is_set():
                        raise Cancelled
                    xb, yb = x_train[idx], y_train[idx]
                    if plan.augment:
                        xb = _augment(xb, gen)
                    try:
                        with autocast():
                            out = net(xb)
                            if isinstance(out, tuple):  # Inception in train mode: (logits, aux_logits)
                                logits, aux = out
                                loss = F.cross_entropy(logits, yb) + (0.4 * F.cross_entropy(aux, yb)
                                                                      if aux is not None else 0.0)
                            else:
                                logits = out
                                loss = F.cross_entropy(logits, yb)
                        scaler.scale(loss).backward()
                    except torch.OutOfMemoryError:
                        optimizer.zero_grad(set_to_none=True)
                        if halved or batch == 1:
                            raise
                        halved, batch = True, max(1, batch // 2)
                        if use_cuda:
                            torch.cuda.empty_cache()
                        self._emit(EventRecord(f"Out of GPU memory: halved the batch size to {batch} and carried on."))
                        continue
                    scaler.unscale_(optimizer) if use_scaler else None
                    factor = lr_factor(step)
                    for pg in optimizer.param_groups:  # frozen groups stay at 0
                        pg["lr"] = 0.0 if pg["name"] in gm.frozen else pg["planned_lr"] * factor
                    tracker.before_step()
                    scaler.step(optimizer)
                    scaler.update()
                    (loss_v, n_right), grads, ratios = tracker.after_step(
                        loss.float(), (logits.detach().argmax(1) == yb).sum(dtype=torch.float32))
                    optimizer.zero_grad(set_to_none=True)
                    if step == 0 and math.isfinite(loss_v):  # a poor start (e.g. random features) is no divergence
                        explode_at = max(explode_at, 100 * loss_v)
                    if not math.isfinite(loss_v) or loss_v > explode_at:
                        what = f"became {loss_v}" if not math.isfinite(loss_v) else f"exploded to {loss_v:.3g}"
                        raise Diverged(f"The loss {what} at step {step + 1} (epoch {epoch + 1}). The learning "
                                       f"rate {plan.lr:g} is probably too high; try {min(plan.lr / 10, 3e-3):g}.")
                    loss_sum += loss_v * len(idx)
                    correct += n_right
                    seen += len(idx)
                    self._emit(StepRecord(step, epoch, loss_v, {pg["name"]: pg["lr"] for pg in optimizer.param_groups},
                                          grads, ratios))
                    step += 1
                    pos += len(idx)
                net.eval()
                val_loss = val_acc = None
                if (epoch + 1) % val_every == 0 or epoch == epochs - 1:
                    val_logits = extract_features(net, x_val, batch_size=256)
                    val_loss = F.cross_entropy(val_logits, y_val).item()
                    val_acc = (val_logits.argmax(1) == y_val).float().mean().item()
                self._emit(EpochRecord(epoch, loss_sum / max(seen, 1), correct / max(seen, 1), val_loss, val_acc,
                                       time.perf_counter() - t0, thawed))
        except Cancelled:
            res.status, res.reason = "cancelled", f"Stopped by request after {step} steps; the finished epochs are kept."
        except Diverged as e:
            res.status, res.reason = "diverged", str(e)
        else:
            res.status, res.reason = "finished", f"Trained {epochs} epochs ({step} steps)."
        finally:
            net.eval()
        if res.status != "diverged":
            final = val_logits if res.status == "finished" else extract_features(net, x_val, batch_size=256)
            res.evaluation = evaluate(final.cpu(), y_val.cpu(), classes)  # the last epoch's pass, when it is final
        res.drift = tracker.drift()
        res.bn_drift = _relative_change(bn_start, _bn_stats(gm))
        res.wall_s = time.perf_counter() - t0
        if self.keep_weights:
            res.state_dict = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return res


def train(plan: Plan, train_data: TensorData, val_data: TensorData, **kwargs) -> RunResult:
    """Run a plan. Keyword arguments are those of `Trainer` (base, on_record, cancel, ratio_every, keep_weights).

    Raises:
        ValueError: If the plan does not fit the data (before anything is trained).
    """
    return Trainer(plan, train_data, val_data, **kwargs).run()
