"""The trainer: turns a Plan and labelled tensors into a run, streaming per-step and per-epoch records.

A run builds the model the plan describes (fresh, or a copy of the pretrained source), freezes its groups, and,
when a frozen prefix can never change (no augmentation, no gradual unfreezing, BatchNorm kept in eval), computes
that prefix's features once and trains only the rest. A side branch (Inception's auxiliary classifier) runs, and
its loss counts, only while it trains. It can be cancelled from another thread, stops with a clear reason when the
loss becomes NaN or infinite, is deterministic on the CPU for a given seed, and reports the epochs and steps it
actually ran. `Trainer.run` reads as its table of contents; each step is a named method."""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tl_core.models import networks as models
from tl_core.training.device import select_device
from tl_core.models.features import cpu_bf16_supported, extract_features
from tl_core.training.freeze import (GroupedModel, build_optimizer, freeze, next_to_thaw, schedule_factor,
                                     set_learning_rates, set_train_mode, thaw)
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


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
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


def raised_epochs_note(plan: Plan, n_train: int) -> str:
    """Why a plan on n_train images runs more epochs than it says ("" when it runs exactly plan.epochs)."""
    epochs, steps_per_epoch = schedule_for(plan, n_train)
    if epochs == plan.epochs:
        return ""
    return (f"{n_train} images make {steps_per_epoch} step(s) per epoch; running {epochs} epochs instead of "
            f"{plan.epochs} so training gets at least {plan.min_steps} steps (the plan's minimum optimiser steps).")


@dataclass
class BuiltModel:
    """A model made for a plan, seen through its layer groups, with the plan's freezing applied."""

    model: nn.Module  # the whole model (a CutModel for the early classifier)
    chain: list[models.Stage]  # its forward pass as stages
    side: dict[str, nn.Module]  # side branches outside the chain (Inception's aux head), by group
    grouped: GroupedModel  # parameters and modules per group, and which groups are frozen
    side_weight: float = 0.0  # how much a side branch's loss counts while it trains

    def side_trains(self) -> bool:
        """Whether a side branch trains now (its loss then counts, so the whole model runs)."""
        return any(g not in self.grouped.frozen for g in self.side)


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
    view = models.grouped_view(model, plan.arch)
    params = {g: view.params[g] for g in plan.groups if g in view.params}
    gm = GroupedModel(model, params, view.modules, bn_policy=plan.bn_policy)
    freeze(gm, [g for g in plan.frozen if g in params])
    return BuiltModel(model, view.chain, view.side, gm, models.side_loss_weight(plan.arch))


def training_forward(built: BuiltModel, net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One train-mode forward pass: (logits, side-branch logits while a side branch trains, else None).

    A frozen side branch never runs: torchvision's Inception computes its auxiliary head whenever the model is in
    train mode, which at small inputs fails (its 5x5 pooling has nothing to pool) and at 299 pixels would add a
    frozen random head's loss. So the chain of stages runs instead, unless the side branch trains.

    Args:
        built: The model and its stages.
        net: What runs on x when no side branch trains (trained_part: the model, or the stages after a cached
            prefix, whose output x then is).
        x: (B, C, H, W) inputs.
    """
    if built.side_trains():
        logits, aux = built.model(x)  # Inception in train mode: (logits, aux_logits)
        return logits, aux
    return net(x), None


def training_loss(logits: torch.Tensor, aux: torch.Tensor | None, y: torch.Tensor, aux_weight: float) -> torch.Tensor:
    """Cross-entropy of the logits, plus aux_weight times that of a training side branch (Inception: 0.4)."""
    loss = F.cross_entropy(logits, y)
    if aux is not None:
        loss = loss + aux_weight * F.cross_entropy(aux, y)
    return loss


def cacheable_prefix(built: BuiltModel, plan: Plan) -> list[models.Stage]:
    """The leading stages whose output can never change during the run, so their features can be computed once.

    That needs frozen groups in eval mode throughout: no augmentation (inputs change), no gradual unfreezing,
    the "eval" BatchNorm policy, and no side branch that trains (the whole model runs then).

    Returns:
        The stages to compute once (empty when nothing with parameters can be cached).
    """
    gm = built.grouped
    if plan.augment or plan.unfreeze_every or plan.bn_policy != "eval" or built.side_trains():
        return []
    prefix: list[models.Stage] = []
    for st in built.chain[:-1]:
        if st.group is not None and st.group not in gm.frozen:
            break
        prefix.append(st)
    return prefix if any(st.group is not None for st in prefix) else []


def trained_part(built: BuiltModel, n_cached: int = 0) -> nn.Module:
    """What runs on the prepared inputs: the whole model, or the chain of stages after a cached prefix of n_cached
    stages (also for a model with side branches, so that a frozen side branch never runs; see training_forward)."""
    if n_cached == 0 and not built.side:
        return built.model
    return nn.Sequential(*[st.module for st in built.chain[n_cached:]])


class Trainer:
    """One run of one plan. Use `train(...)` for the common case.

    `run()` reads as its table of contents: build the model, prepare the inputs, cache the frozen prefix, set up the
    optimiser, then per epoch: start it (thaw, train mode), train its steps, validate; and finish.
    """

    # The run's state, set by the steps of run() in order.
    built: BuiltModel  # the model and its groups (_build_model)
    gm: GroupedModel  # its grouped view, with the frozen set
    x_train: torch.Tensor  # prepared inputs, or the cached prefix's features (_prepare_inputs, _cache_frozen_prefix)
    net: nn.Module  # what runs on x_train (trained_part)
    optimizer: torch.optim.Optimizer  # one group per layer group (_set_up_optimisation)
    tracker: GradTracker  # gradient norms, update ratios and drift per group
    epochs: int  # epochs scheduled (raised to reach min_steps)
    total_steps: int  # optimizer steps scheduled
    step: int  # optimizer steps taken
    batch: int  # images per step (halved once if the GPU runs out of memory)

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

    # ---- the run: a table of contents ----
    def run(self) -> RunResult:
        """Train the plan and return its result (finished, cancelled or diverged)."""
        self._t0 = time.perf_counter()
        self._build_model()
        self._prepare_inputs()
        self._cache_frozen_prefix()
        self._set_up_optimisation()
        try:
            for epoch in range(self.epochs):
                self._start_epoch(epoch)
                self._train_epoch(epoch)
                self._validate(epoch)
        except Cancelled:
            self._stop("cancelled", f"Stopped by request after {self.step} steps; the finished epochs are kept.")
        except Diverged as e:
            self._stop("diverged", str(e))
        else:
            self._stop("finished", f"Trained {self.epochs} epochs ({self.step} steps).")
        finally:
            self.net.eval()
        return self._finish()

    # ---- the steps ----
    def _build_model(self) -> None:
        """The plan's model with its groups frozen, on the run's device."""
        plan, res = self.plan, self.result
        self.device = select_device(plan.device)
        res.device = str(self.device)
        self.start_model = self._pretrained()  # shared and never changed: also drift's reference
        self.built = build_for_plan(plan, len(self.train_data.classes), int(self.train_data.x.shape[-1]),
                                    base=self.start_model)
        self.gm = self.built.grouped
        res.groups = self.gm.groups
        res.total_params = models.count_params(self.built.model)
        self.built.model.to(self.device)
        self.built.model.to(memory_format=torch.channels_last)  # faster convolutions on CUDA and on the CPU alike
        self.use_cuda = self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.use_cuda and torch.cuda.is_bf16_supported() else torch.float16

    def _pretrained(self) -> nn.Module | None:
        """The model the run starts from: the caller's base, or the architecture's shared one (None for scratch)."""
        if not self.plan.pretrained:
            return None
        if self.base is not None:
            return self.base
        return pretrained_base(self.plan.arch)

    def _prepare_inputs(self) -> None:
        """Resize and normalise every image once, on the device."""
        data_size = int(self.train_data.x.shape[-1])
        self.pre = models.preprocess_for(self.plan.arch, data_size, aux=self.plan.trains_aux).to(self.device)
        self.x_train, self.y_train = self._prepare(self.train_data.x), self.train_data.y.to(self.device)
        self.x_val, self.y_val = self._prepare(self.val_data.x), self.val_data.y.to(self.device)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, h, w) in [0, 1] as the model's inputs (N, 3, S, S), channels-last, on the device."""
        with torch.no_grad():
            out = torch.cat([self.pre(x[i:i + 512].to(self.device)) for i in range(0, x.shape[0], 512)])
        return out.contiguous(memory_format=torch.channels_last)

    def _cache_frozen_prefix(self) -> None:
        """Compute a never-changing frozen prefix's features once; the rest of the chain (`net`) trains on them."""
        prefix = cacheable_prefix(self.built, self.plan) if self.cache_frozen else []
        if prefix:
            self._extract_prefix_features(prefix)
        self.net = trained_part(self.built, len(prefix))
        self.result.trainable_params = models.count_params(self.built.model, trainable_only=True)

    def _extract_prefix_features(self, prefix: list[models.Stage]) -> None:
        """Replace the prepared inputs by the frozen prefix's outputs (bf16 on a capable CPU for heavy models)."""
        body = nn.Sequential(*[st.module for st in prefix]).eval()
        heavy = self.plan.spec.torchvision
        n_images = len(self.x_train) + len(self.x_val)
        bf16 = " (bf16)" if heavy and self.device.type == "cpu" and cpu_bf16_supported() else ""
        self._emit(EventRecord(f"Computing the frozen layers' features of {n_images} images once{bf16}."))
        self.x_train = extract_features(body, self.x_train, batch_size=64 if heavy else 256, heavy=heavy)
        self.x_val = extract_features(body, self.x_val, batch_size=64 if heavy else 256, heavy=heavy)
        self.result.cached_prefix = tuple(st.group for st in prefix if st.group is not None)
        self._emit(EventRecord(f"Computed the frozen {', '.join(self.result.cached_prefix)} features once "
                               f"({n_images} images); training runs on the cache."))

    def _set_up_optimisation(self) -> None:
        """The optimizer, the tracker, the schedule (epochs raised to reach min_steps) and the start record."""
        plan, res, gm = self.plan, self.result, self.gm
        self.optimizer = build_optimizer(gm, plan)
        self.use_scaler = self.use_cuda and self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_scaler)
        ratio_every = self.ratio_every
        if ratio_every is None:
            ratio_every = 5 if res.total_params < 1_000_000 else 20
        start = dict(self.start_model.named_parameters()) if self.start_model is not None else {}
        reference = {id(p): start[n] for n, p in self.built.model.named_parameters()
                     if n in start and start[n].shape == p.shape}
        self.tracker = GradTracker(gm.params, ratio_every=ratio_every, reference=reference)
        self.bn_start = _bn_stats(gm)
        self.gen = torch.Generator().manual_seed(plan.seed + 1)
        self.batch, self.halved = plan.batch_size, False
        n = len(self.y_train)
        self.epochs, self.steps_per_epoch = schedule_for(plan, n)
        self.total_steps = self.epochs * self.steps_per_epoch
        self.val_every = max(1, math.ceil(self.epochs / self.max_val_evals))  # validation is not free on tiny data
        raised = raised_epochs_note(plan, n)
        res.epochs_planned, res.epochs_scheduled, res.steps_scheduled = plan.epochs, self.epochs, self.total_steps
        res.schedule_note = raised
        if raised:
            self._emit(EventRecord(raised))
        self._emit(StartRecord(total_steps=self.total_steps, epochs=self.epochs, groups=gm.groups,
                               frozen=tuple(sorted(gm.frozen, key=gm.groups.index)), cached=res.cached_prefix,
                               epochs_planned=plan.epochs, schedule_note=raised))
        self.explode_at = 100 * math.log(max(len(self.train_data.classes), 2))  # 100x a uniform guess (or 1st loss)
        self.step = 0
        self.val_logits = torch.empty(0)

    def _start_epoch(self, epoch: int) -> None:
        """Gradual unfreezing (the deepest frozen group thaws every unfreeze_every epochs), then train mode."""
        self.thawed: tuple[str, ...] = ()
        every = self.plan.unfreeze_every
        if every and epoch > 0 and epoch % every == 0:
            group = next_to_thaw(self.gm)
            if group is not None:
                thaw(self.gm, group)
                self.thawed = (group,)
                self._emit(EventRecord(f"Epoch {epoch + 1}: unfroze {group}."))
        set_train_mode(self.gm)  # the chain `net` shares its modules with the model

    def _train_epoch(self, epoch: int) -> None:
        """One pass over the shuffled training images; a trailing batch of one image is dropped."""
        n = len(self.y_train)
        perm = torch.randperm(n, generator=self.gen).to(self.device)
        self.loss_sum, self.correct, self.seen = 0.0, 0.0, 0
        pos = 0
        while pos < n:
            idx = perm[pos:pos + self.batch]
            if len(idx) == 1 and n > 1:  # a batch of one breaks BatchNorm; drop the remainder
                break
            if self.cancel.is_set():
                raise Cancelled
            if self._train_step(epoch, idx):
                pos += len(idx)

    def _train_step(self, epoch: int, idx: torch.Tensor) -> bool:
        """Forward, backward and one optimizer step on a batch. False if it ran out of memory (retry it, halved)."""
        xb, yb = self.x_train[idx], self.y_train[idx]
        if self.plan.augment:
            xb = augment(xb, self.gen)
        try:
            loss, logits = self._forward_backward(xb, yb)
        except torch.OutOfMemoryError as error:
            self._halve_batch(error)
            return False
        if self.use_scaler:
            self.scaler.unscale_(self.optimizer)
        lrs = set_learning_rates(self.optimizer, self.gm, schedule_factor(self.plan, self.step, self.total_steps))
        self.tracker.before_step()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        (loss_v, n_right), grads, ratios = self.tracker.after_step(
            loss.float(), (logits.detach().argmax(1) == yb).sum(dtype=torch.float32))
        self.optimizer.zero_grad(set_to_none=True)
        self._check_divergence(loss_v, epoch)
        self.loss_sum += loss_v * len(idx)
        self.correct += n_right
        self.seen += len(idx)
        self._emit(StepRecord(self.step, epoch, loss_v, lrs, grads, ratios))
        self.step += 1
        return True

    def _forward_backward(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's loss (main head, plus the side branch's while it trains), backpropagated. Returns (loss,
        logits)."""
        with self._autocast():
            logits, aux = training_forward(self.built, self.net, xb)
            loss = training_loss(logits, aux, yb, self.built.side_weight)
        self.scaler.scale(loss).backward()
        return loss, logits

    def _autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision on CUDA; full precision elsewhere."""
        if self.use_cuda:
            return torch.autocast(device_type="cuda", dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _halve_batch(self, error: torch.OutOfMemoryError) -> None:
        """The out-of-memory retry: halve the batch once and carry on; a second time, give up.

        Raises:
            torch.OutOfMemoryError: If the batch was already halved (or is a single image).
        """
        self.optimizer.zero_grad(set_to_none=True)
        if self.halved or self.batch == 1:
            raise error
        self.halved, self.batch = True, max(1, self.batch // 2)
        if self.use_cuda:
            torch.cuda.empty_cache()
        self._emit(EventRecord(f"Out of GPU memory: halved the batch size to {self.batch} and carried on."))

    def _check_divergence(self, loss: float, epoch: int) -> None:
        """Stop when the loss is NaN, infinite, or 100x above both a uniform guess and the first step's loss.

        Raises:
            Diverged: With a sentence naming the step and a smaller learning rate to try.
        """
        if self.step == 0 and math.isfinite(loss):  # a poor start (e.g. random features) is no divergence
            self.explode_at = max(self.explode_at, 100 * loss)
        if math.isfinite(loss) and loss <= self.explode_at:
            return
        what = f"exploded to {loss:.3g}" if math.isfinite(loss) else f"became {loss}"
        raise Diverged(f"The loss {what} at step {self.step + 1} (epoch {epoch + 1}). The learning rate "
                       f"{self.plan.lr:g} is probably too high; try {min(self.plan.lr / 10, 3e-3):g}.")

    def _validate(self, epoch: int) -> None:
        """Score the validation set (on evenly spaced epochs and the last) and record the epoch."""
        self.net.eval()
        val_loss = val_acc = None
        if (epoch + 1) % self.val_every == 0 or epoch == self.epochs - 1:
            self.val_logits = extract_features(self.net, self.x_val, batch_size=256)
            val_loss = F.cross_entropy(self.val_logits, self.y_val).item()
            val_acc = (self.val_logits.argmax(1) == self.y_val).float().mean().item()
        self._emit(EpochRecord(epoch, self.loss_sum / max(self.seen, 1), self.correct / max(self.seen, 1), val_loss,
                               val_acc, time.perf_counter() - self._t0, self.thawed))

    def _stop(self, status: str, reason: str) -> None:
        """Record how the run ended, and the epochs and steps it actually ran (and why they differ from the plan)."""
        res = self.result
        res.status, res.reason = status, reason
        res.epochs_run, res.steps_run = len(res.epochs), self.step
        notes = [res.schedule_note] if res.schedule_note else []
        if self.halved:
            notes.append(f"Out of memory, the batch was halved to {self.batch}, so epochs took more steps.")
        if status != "finished":
            notes.append(f"The run {'was stopped' if status == 'cancelled' else 'diverged'} after "
                         f"{res.epochs_run} of {res.epochs_scheduled} epochs ({res.steps_run} of "
                         f"{res.steps_scheduled} steps).")
        res.schedule_note = " ".join(notes)

    def _finish(self) -> RunResult:
        """The final evaluation (the last validation pass when it is final), drift, timing and the weights."""
        res = self.result
        if res.status != "diverged":
            final = self.val_logits if res.status == "finished" else extract_features(self.net, self.x_val,
                                                                                      batch_size=256)
            res.evaluation = evaluate(final.cpu(), self.y_val.cpu(), self.train_data.classes)
        res.drift = self.tracker.drift()
        res.bn_drift = _relative_change(self.bn_start, _bn_stats(self.gm))
        res.wall_s = time.perf_counter() - self._t0
        if self.keep_weights:
            res.state_dict = {k: v.detach().cpu().clone() for k, v in self.built.model.state_dict().items()}
        return res

    def _emit(self, rec: Record) -> None:
        """Keep a record in the result and pass it to on_record."""
        if isinstance(rec, StepRecord):
            self.result.steps.append(rec)
        elif isinstance(rec, EpochRecord):
            self.result.epochs.append(rec)
        elif isinstance(rec, EventRecord):
            self.result.events.append(rec)
        if self.on_record is not None:
            self.on_record(rec)


def train(plan: Plan, train_data: TensorData, val_data: TensorData, **kwargs) -> RunResult:
    """Run a plan. Keyword arguments are those of `Trainer` (base, on_record, cancel, ratio_every, keep_weights).

    Raises:
        ValueError: If the plan does not fit the data (before anything is trained).
    """
    return Trainer(plan, train_data, val_data, **kwargs).run()
