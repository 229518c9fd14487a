"""How long will this run take? An estimate from throughput measured on this machine, before committing to it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tl_core.models import networks as models
from tl_core.models.features import extract_features, measure_throughput
from tl_core.training.plan import Plan
from tl_core.training.freeze import set_train_mode
from tl_core.training.trainer import build_for_plan, schedule_for, trained_part, training_forward, training_loss


@dataclass(frozen=True)
class Estimate:
    """A measured estimate of a run's duration."""

    seconds: float  # expected wall time of the whole run
    images_per_s: float  # measured throughput of the expensive part (training steps or feature extraction)
    total_steps: int  # optimizer steps the run will take
    cached: bool  # whether the frozen body runs once (feature cache) rather than every step
    note: str  # one sentence for the learner

    @property
    def slow(self) -> bool:
        """Long enough that the learner should confirm first (over half a minute)."""
        return self.seconds > 30


def estimate_run(plan: Plan, n_train: int, n_val: int, n_classes: int, image_size: int,
                 base: nn.Module | None = None, probe_batch: int = 8) -> Estimate:
    """Measure a couple of steps (or forward passes) of this plan here, and extrapolate to the whole run.

    Args:
        plan: The plan to run (on the CPU; estimates are for the CPU).
        n_train / n_val: Images the run will train and validate on.
        n_classes: Classes of the task.
        image_size: Side length of the images.
        base: The pretrained model (default: the architecture's shared pretrained model).
        probe_batch: Images per measured step; small, so the estimate itself is quick.
    """
    plan.validate()
    built = build_for_plan(plan, n_classes, image_size, base=base)
    size = models.input_size_for(plan.arch, image_size, aux=plan.trains_aux)
    heavy = plan.spec.torchvision
    batch = min(plan.batch_size, probe_batch, n_train)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.arange(batch) % n_classes
    model = built.model.to(memory_format=torch.channels_last)
    epochs, steps_per_epoch = schedule_for(plan, n_train)
    total_steps = epochs * steps_per_epoch
    cached = (plan.strategy in ("feature_extract", "early_classifier") and not plan.augment
              and plan.bn_policy == "eval")
    if cached:
        ips = measure_throughput(lambda: extract_features(model, x, batch_size=batch, heavy=heavy), batch)
        seconds = (n_train + n_val) / ips + 0.002 * total_steps  # one pass, then a tiny head
        note = (f"The frozen body runs once over {n_train + n_val} images at about {ips:.0f} images/s; "
                f"the new head then trains for {total_steps} quick steps.")
    else:
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
        net = trained_part(built)

        def step() -> None:
            logits, aux = training_forward(built, net, x)  # as the trainer runs it (a frozen aux head stays idle)
            loss = training_loss(logits, aux, y, built.side_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        set_train_mode(built.grouped)
        ips = measure_throughput(step, batch)
        evals = min(epochs, 10)
        seconds = total_steps * plan.batch_size / ips + evals * n_val / (3 * ips)
        note = (f"{total_steps} training steps of {plan.batch_size} images at about {ips:.0f} images/s "
                f"on this machine.")
    return Estimate(seconds=math.ceil(seconds * 10) / 10, images_per_s=ips, total_steps=total_steps,
                    cached=cached, note=note)
