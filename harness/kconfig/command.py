"""`kmatrix explain CONFIG_X[=VALUE] [--config FILE]`: resolve, dump, explain, repair."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import IO

from .. import arch as archmod
from ..arch import Arch
from ..container import Runner
from ..verdict import EXIT_BAD_INPUT, EXIT_KERNEL_FAILED, EXIT_OK, InputError
from .config import Config, config_name, parse_config
from .explain import explain
from .repair import repair
from .session import KconfigSession

# ---------------------------------------------------------------------------------------------
# kmatrix explain

def parse_request(text: str) -> tuple[str, str]:
    """`CONFIG_X`, `X`, `CONFIG_X=n` -> ("CONFIG_X", value); y when no value is given."""
    name, _, value = text.partition("=")
    name = config_name(name.strip())
    if not re.fullmatch(r"CONFIG_[A-Za-z0-9_]+", name):
        raise InputError(f"{text!r} is not a Kconfig symbol: write CONFIG_NAME or CONFIG_NAME=VALUE")
    return name, value.strip() or "y"


def explain_main(symbol: str, config: Path | Config | None, tree: Path, out: Path,
                 runner: Runner, log: IO[str] | None = None, arch: Arch | None = None
                 ) -> tuple[str, int]:
    """`kmatrix explain CONFIG_X[=VALUE] [--config FILE]`: text and exit status.

    `config` is a .config/fragment file (--config) or an already merged Config (--combo: the
    combination's base + fragments + requested values); None means the tree's defaults (an
    empty config through olddefconfig). It is resolved by olddefconfig in `out`, dumped,
    explained, and, when the value does not hold, repaired and checked.
    Exit 0 when the value holds, 1 when it does not (the text says why and how to repair),
    2 for a symbol that does not exist or an unreadable config, 3 for Docker/tooling trouble.
    `arch` (default: kmatrix's default architecture) is the one Kconfig resolves for."""
    name, value = parse_request(symbol)
    base = _read_config(config)
    own_log = log is None
    log_file = log or _open_log(out)
    try:
        session = KconfigSession(tree, out, runner, log_file, arch=arch or archmod.default())
        started = time.monotonic()
        session.olddefconfig(base)
        dump = session.dump()
        explanation = explain(name, value, dump, tree=tree)
        explain_s = time.monotonic() - started
        text = explanation.lines()
        status = EXIT_OK if explanation.holds else EXIT_KERNEL_FAILED
        if not explanation.exists:
            status = EXIT_BAD_INPUT
        elif not explanation.holds and not explanation.unsatisfiable:
            started = time.monotonic()
            fixed = repair({name: value}, base, session)
            text.append(f"Repair ({time.monotonic() - started:.1f} s, checked by make olddefconfig):")
            text.append("  " + fixed.describe())
        text.append(f"Kernel: {dump.kernel}; explained in {explain_s:.1f} s")
        text.append("Commands (rerun by hand):")
        text += [f"  {c}" for c in dict.fromkeys(session.commands)]
        return "\n".join(text) + "\n", status
    finally:
        if own_log:
            log_file.close()


def _read_config(config: Path | Config | None) -> Config:
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    try:
        return parse_config(config.read_text())
    except OSError as exc:
        raise InputError(f"cannot read config {config}: {exc.strerror}") from exc


def _open_log(out: Path) -> IO[str]:
    out.mkdir(parents=True, exist_ok=True)
    return open(out / "kconfig.log", "a", encoding="utf-8")
