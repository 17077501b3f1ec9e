"""Training-step speed of the `motion` preset, per change and beside a busy neighbour process.

    .venv/bin/python benchmarks/speed.py [--steps 30] [--rounds 2] [--json speed.json]

Each configuration runs in its own Python process, because OpenMP reads its wait policy once, when
torch loads: the step (forward, backward, gradient clipping, AdamW) on a batch of 8 uint8 clips of
the preset's shape (8 frames, 112 px), clips/s after 3 warm-up steps. Configurations:

- `contiguous` / `channels_last`: the input layout of the first convolution
  (`modeling_motion_cnn.INPUT_MEMORY_FORMAT`; channels-last is the default);
- `active` / `passive`: OpenMP's wait policy (`OMP_WAIT_POLICY`; the `vidcls` command sets PASSIVE);
- `threads=N`: torch's intra-op threads (default: one per core);
- `+neighbour`: the same beside a CPU-bound busy loop started with `nice -n 19`, as another job on
  the machine would be; the contention figure is clips/s with the neighbour over clips/s without.

Rounds alternate the configurations, so a change in the machine's load hits them alike. Each
result carries the load average before and after it and the CPU it ran on (`lscpu` model name,
whether AVX-512 is there, torch's CPU capability). Figures: benchmarks/speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    # name: (layout, wait policy, threads, neighbour)
    "contiguous, active": ("contiguous", "ACTIVE", None, False),
    "channels_last, active": ("channels_last", "ACTIVE", None, False),
    "channels_last, passive": ("channels_last", "PASSIVE", None, False),
    "contiguous, passive": ("contiguous", "PASSIVE", None, False),
    "channels_last, active +neighbour": ("channels_last", "ACTIVE", None, True),
    "channels_last, passive +neighbour": ("channels_last", "PASSIVE", None, True),
    "channels_last, passive, threads=1 +neighbour": ("channels_last", "PASSIVE", 1, True),
}
BUSY_LOOP = "while True: pass"


def cpu_description() -> dict:
    """The CPU's model name, whether it has AVX-512, and the core count, from lscpu."""
    fields = dict(line.split(":", 1) for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model": fields.get("Model name", "?").strip(), "avx512": any(f.startswith("avx512") for f in flags),
            "avx2": "avx2" in flags, "cores": os.cpu_count()}


def loadavg() -> list[float]:
    return [float(value) for value in open("/proc/loadavg").read().split()[:3]]


def child(layout: str, threads: int | None, steps: int) -> dict:
    """Time the step in this process (its environment already holds the wait policy)."""
    import torch

    from vidcls.models import modeling_motion_cnn
    from vidcls.inference.forward import model_logits
    from vidcls.models.loading import create_model

    if threads:
        torch.set_num_threads(threads)
    modeling_motion_cnn.INPUT_MEMORY_FORMAT = getattr(torch, f"{layout}_3d" if layout == "channels_last" else "contiguous_format")
    torch.manual_seed(0)
    loaded = create_model("motion", [f"class{i}" for i in range(6)], None, None, None)
    model, spec = loaded.model.train(), loaded.spec
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    clips = torch.randint(0, 256, (8, spec.num_frames, 3, spec.crop_size, spec.crop_size), dtype=torch.uint8)
    labels = torch.randint(0, 6, (8,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model_logits(model, clips, spec), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {"clips_per_s": 8 * steps / seconds, "ms_per_step": 1e3 * seconds / steps,
            "cpu_s_per_step": (time.process_time() - cpu) / steps, "threads": torch.get_num_threads(),
            "capability": torch.backends.cpu.get_cpu_capability()}


def measure(name: str, steps: int) -> dict:
    """One configuration in a fresh process, with its neighbour when it has one."""
    layout, policy, threads, neighbour = CONFIGS[name]
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    busy = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", BUSY_LOOP]) if neighbour else None
    before = loadavg()
    try:
        completed = subprocess.run(
            [sys.executable, __file__, "--child", layout, "--threads", str(threads or 0), "--steps", str(steps)],
            env=env, capture_output=True, text=True, check=True,
        )
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return {"config": name, **json.loads(completed.stdout.splitlines()[-1]), "loadavg_before": before,
            "loadavg_after": loadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), help=f"any of: {', '.join(CONFIGS)}")
    parser.add_argument("--json", help="write every result here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.threads or None, args.steps)))
        return
    results = []
    for round_ in range(args.rounds):
        for name in args.configs:
            results.append({"round": round_, **measure(name, args.steps)})
            row = results[-1]
            print(f"{name:48s} {row['clips_per_s']:6.1f} clips/s  load {row['loadavg_before']}", file=sys.stderr)
    summary = {"cpu": cpu_description(), "steps": args.steps, "results": results}
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
