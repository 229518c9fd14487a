"""Own-data benchmarks: resnet18 feature extraction at 224 px on the CPU, against a plain eval loop.

`python bench/bench_owndata.py` prints JSON lines; `run()` returns the records.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tl_core.models.features import cpu_bf16_supported, extract_features  # noqa: E402
from tl_core.models.networks import build_model  # noqa: E402


def feature_extract_224(n: int = 128, batch: int = 32, repeats: int = 3) -> list[dict]:
    """tl_core.models.features.extract_features (channels_last, bf16 where native) vs `model.eval()` + inference_mode."""
    torch.manual_seed(0)
    body = build_model("resnet18", 1000)
    body.fc = torch.nn.Identity()  # the frozen backbone of fixed feature extraction
    x = torch.rand(n, 3, 224, 224)

    def plain() -> float:
        model = body.to(memory_format=torch.contiguous_format).eval()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, n, batch):
                model(x[i:i + batch])
        return n / (time.perf_counter() - t0)

    def ours() -> float:
        t0 = time.perf_counter()
        extract_features(body, x, batch_size=batch, heavy=True)
        return n / (time.perf_counter() - t0)

    plain(), ours()  # warm-up: oneDNN builds its kernels on first use
    p_runs, o_runs = [], []
    for _ in range(repeats):  # alternate, so background load hits both alike
        p_runs.append(plain())
        o_runs.append(ours())
    p, o = sorted(p_runs)[len(p_runs) // 2], sorted(o_runs)[len(o_runs) // 2]
    return [
        {"figure": "feature_extract_224_img_s", "value": round(o, 1), "unit": "img/s",
         "bf16": cpu_bf16_supported(), "plain_img_s": round(p, 1)},
        {"figure": "feature_extract_224_ratio", "value": round(o / p, 3), "unit": "ratio", "goal": ">= 1.0"},
    ]


def run() -> list[dict]:
    return feature_extract_224()


if __name__ == "__main__":
    for rec in run():
        print(json.dumps(rec), flush=True)
