"""CPU seconds per training step of the fast-style recipe, so changes to the loss path can be timed.

One thread, the recipe's batch (4 crops of 256 px, painting at 512 px, the roll, the grid and Laplacian
terms), a few warm-up steps, then the median process CPU time of the timed steps, split into the forward
(net and loss terms) and the backward plus the Adam step. Needs the photos and a painting.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/step_time.py --arch mobile2 --steps 12
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.core.backbones import get_backbone  # noqa: E402
from service.core.imageio import load_image  # noqa: E402
from service.core.stylize.dataset import CropSampler, list_photos  # noqa: E402
from service.core.stylize.losses import PerceptualLoss  # noqa: E402
from service.core.stylize.nets import build_net  # noqa: E402
from service.core.stylize.train import TrainConfig, step_terms, style_target  # noqa: E402

DATA = Path("/work/shared/data")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="mobile2")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--photos", type=Path, default=DATA / "photos")
    p.add_argument("--painting", type=Path, default=DATA / "styles" / "van_gogh_starry_night.jpg")
    p.add_argument("--batch-gram", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TrainConfig(
        arch=args.arch,
        batch=4,
        size=256,
        style_size=512,
        shift_jitter=32,
        content_weight=3,
        grid_weight=3,
        style_weight=24,
        laplacian_weight=1.5,
        batch_gram=args.batch_gram,
    )
    backbone = get_backbone("efficientnet_lite0")
    style = style_target(load_image(args.painting), cfg.style_size, backbone.device)
    loss_fn = PerceptualLoss(backbone, style, cfg.loss_weights(), batch_gram=cfg.batch_gram)
    net = build_net(cfg.arch)
    opt = torch.optim.Adam(net.parameters(), cfg.lr)
    sampler = CropSampler(list_photos(args.photos), cfg.size, 0)
    times = []
    for step in range(3 + args.steps):
        content = sampler.batch(step, cfg.batch)
        t0 = time.process_time()
        terms = step_terms(cfg, loss_fn, net(content), content, step)
        t1 = time.process_time()
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        t2 = time.process_time()
        if step >= 3:
            times.append((t1 - t0, t2 - t1))
    fwd, bwd = np.median(np.array(times), axis=0)
    print(f"{cfg.arch}: {fwd + bwd:.3f} CPU s per step (forward {fwd:.3f}, backward + Adam {bwd:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
