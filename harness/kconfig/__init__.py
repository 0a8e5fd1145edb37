"""Kconfig, read by the tree's own Kconfig code.

- ``config``: .config files and fragments, config truth, the symbol table (plain functions);
- ``expr``, ``dump``: the expression and symbol model of kconfig_dump.c's JSON lines;
- ``planner``, ``explain``, ``repair``: why a value does not hold and the smallest repair;
- ``session``: the one place that runs Kconfig (config targets, olddefconfig, the dumper);
- ``command``: ``kmatrix explain``.

The names of ``config`` are re-exported here: ``kconfig.parse_config(...)``.
"""

from .config import (
    SYMBOL_RE,
    TRISTATE_VALUES,
    Config,
    Mismatch,
    SymbolTable,
    actual_value,
    bare_name,
    check_value,
    config_hash,
    config_name,
    config_truth,
    config_value,
    kconfig_files,
    merge,
    normalize,
    parse_config,
    render_config,
    scan_symbols,
)

__all__ = ["SYMBOL_RE", "TRISTATE_VALUES", "Config", "Mismatch", "SymbolTable", "actual_value",
           "bare_name", "check_value", "config_hash", "config_name", "config_truth",
           "config_value", "kconfig_files", "merge", "normalize", "parse_config",
           "render_config", "scan_symbols"]
