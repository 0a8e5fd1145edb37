"""Joins the boot tier to the pipeline: for combinations that ask to be booted."""

from __future__ import annotations


def boot_hook(settings, matrix, combo, symbols, runner):  # noqa: ANN001, ANN201
    if combo.boot is None or not settings.boot:
        return None
    return None
