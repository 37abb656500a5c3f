"""`lernomatic doctor`: what becomes of each module of the old checkouts on LERNOMATIC_PATH.

One line per module: 'tree' (imported from the old checkout), 'replaced' (this project provides a
module of that name, which wins) or 'fails' (importing it raised, and why), then a summary line.
The exit status is 1 when a module fails, so a script or CI can check a checkout.
"""

from __future__ import annotations

import argparse

from lernomatic.legacy_path import LEGACY_PATH_ENV, legacy_modules, legacy_roots

__all__ = ['run']


def run(args: argparse.Namespace) -> int:
    roots = legacy_roots()
    if not roots:
        print(f'{LEGACY_PATH_ENV} is not set: no old checkout to look at. Set {LEGACY_PATH_ENV}=/path/to/old/checkout '
              '(the folder holding lernomatic/) to import its models, trainers and utilities under lernomatic.*')
        return 0
    for root in roots:
        print(f'{LEGACY_PATH_ENV}: {root}')
    reports = legacy_modules(do_import=not args.no_import)
    width = max((len(r.name) for r in reports), default=0)
    for report in reports:
        detail = report.detail or str(report.source)
        if report.status == 'replaced':
            detail = f'by {detail}'
        print(f'{report.status:<9} {report.name:<{width}}  {detail}')
    counts = {status: sum(r.status == status for r in reports) for status in ('tree', 'replaced', 'fails')}
    print(f"{len(reports)} modules: {counts['tree']} from the tree, {counts['replaced']} replaced by this "
          f"project, {counts['fails']} failing")
    return 1 if counts['fails'] else 0
