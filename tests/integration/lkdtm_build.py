"""Build the LKDTM kernels for tests/integration/test_lkdtm_real.py (and the `judge_corpus` nox
session) with the harness's own machinery: kbuild.Kbuild steps in the builder container
(no network, read-only source), tinyconfig + boot fragment + LKDTM fragment, olddefconfig,
config truth with kconfig.config_truth over every requested value, then bzImage.

Each kernel has its own output tree in the persistent work cache, so a rerun is a no-op build.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness import arch, boot, kconfig
from harness.container import Runner, Step
from harness.kbuild import Kbuild

FRAGMENTS = boot.HARNESS_DIR / "fragments"
JOBS = 2

# kernel name -> fragments on top of tinyconfig + the boot fragment
KERNELS: dict[str, tuple[str, ...]] = {
    "lkdtm": ("lkdtm.config",),
    "lkdtm-kasan": ("lkdtm.config", "kasan.config"),
}


@dataclass(frozen=True)
class BuiltKernel:
    name: str
    image: Path  # a copy of bzImage, safe from the next build in the tree
    config: dict[str, str]  # the resolved .config
    config_path: Path
    timings: dict[str, float]


def requested_config(name: str) -> dict[str, str]:
    """Everything asked of Kconfig for one LKDTM kernel, as one Config (later lines win)."""
    text = "\n".join(boot.fragment_lines()) + "\n"
    for fragment in KERNELS[name]:
        text += (FRAGMENTS / fragment).read_text()
    return kconfig.parse_config(text)


def _run(runner: Runner, step: Step, log: IO[str]) -> float:
    result = runner.run(step, log)
    if not result.ok:
        raise AssertionError(f"{step.name} failed: " + "\n".join(result.tail[-15:]))
    return result.duration_s


def build(runner: Runner, tree: Path, work: Path, name: str, log: IO[str]) -> BuiltKernel:
    out = work / f"tree-{name}"
    out.mkdir(parents=True, exist_ok=True)
    tool = Kbuild(tree, arch.default(), JOBS, float(JOBS))
    timings: dict[str, float] = {}
    requested = requested_config(name)
    timings["tinyconfig s"] = _run(runner, tool.make_step("tinyconfig", out, "tinyconfig",
                                                          timeout_s=600), log)
    with open(out / ".config", "a") as config:
        config.write(kconfig.render_config(requested))
    timings["olddefconfig s"] = _run(runner, tool.make_step("olddefconfig", out, "olddefconfig",
                                                            timeout_s=600), log)
    resolved = kconfig.parse_config((out / ".config").read_text())
    dropped = kconfig.config_truth(requested, resolved)
    if dropped:
        raise AssertionError(f"{name}: Kconfig did not keep every requested value: "
                             + "; ".join(m.describe() for m in dropped))
    timings["bzImage s"] = _run(runner, boot.bzimage_step(tree, out, JOBS), log)
    image = work / f"bzImage-{name}"
    shutil.copy(boot.kernel_image(out), image)
    config_path = work / f"config-{name}"
    shutil.copy(out / ".config", config_path)
    return BuiltKernel(name, image, resolved, config_path,
                       {k: round(v, 1) for k, v in timings.items()})
