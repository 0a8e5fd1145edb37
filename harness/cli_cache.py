"""`kmatrix cache [--prune DAYS]`: what kmatrix keeps on disk (harness/cache.py), and pruning
the output trees and seeds nobody used for a while and what stopped runs left behind."""

from __future__ import annotations

import argparse
import time

from .verdict import EXIT_OK, InputError


def cmd_cache(args: argparse.Namespace) -> int:
    from . import cache, source

    root = source.cache_root()
    if args.prune is not None:
        if args.prune < 0:
            raise InputError("--prune takes a number of days (0 or more)")
        removed, busy = cache.prune(cache.stale(root, args.prune * 86400) + cache.leftovers(root))
        for item in removed:
            print(f"removed {item.path} ({cache.human(item.bytes)}, last used "
                  f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(item.last_used))})")
        for item in busy:
            print(f"kept {item.path}: a run is using it")
        print(f"freed {cache.human(sum(i.bytes for i in removed))} in {len(removed)} tree(s) "
              "(unused ones, and what stopped runs left behind)")
        return EXIT_OK
    parts = cache.usage(root)
    print(f"{root}: {cache.human(sum(p.bytes for p in parts))}")
    for part in parts:
        print(f"  {part.name + '/':<17}{cache.human(part.bytes):>11}  {part.what}")
    return EXIT_OK
