"""`lernomatic doctor`: what becomes of each module of the old checkouts on LERNOMATIC_PATH.

First the checks that make the rest meaningless when they fail: an entry of LERNOMATIC_PATH that does not
exist or holds no checkout is a user error (exit 2, one line each on stderr, before anything is imported).
Then a `shadowed` line for each of this project's packages that this process, or a Python started in the
current folder, would import from somewhere else (an old checkout's `lernomatic/` folder in front of it).
Then one line per module: 'tree' (imported from the old checkout), 'replaced' (this project provides a
module of that name, which wins) or 'fails' (importing it raised, and why), and a summary line.
The exit status is 1 when a module fails or a package is shadowed, so a script or CI can check a checkout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lernomatic.legacy_path import LEGACY_PATH_ENV, environment_entries, legacy_modules, legacy_roots
from lernomatic.shadowing import shadowed_in_this_process, shadowed_when_started_in

__all__ = ['run']


def run(args: argparse.Namespace) -> int:
    folders, refused = environment_entries(os.environ.get(LEGACY_PATH_ENV, ''))
    if refused:
        for problem in refused:
            print(f'lernomatic doctor: {problem}', file=sys.stderr)
        return 2
    in_this_process = shadowed_in_this_process()
    shadowed = in_this_process + shadowed_when_started_in(Path.cwd())
    for problem in shadowed:
        print(f'shadowed  {problem}')
    if in_this_process:  # this process runs the checkout's package: what it would list is not what users get
        return 1
    if not folders:
        print(f'{LEGACY_PATH_ENV} is not set: no old checkout to look at. Set {LEGACY_PATH_ENV}=/path/to/old/checkout '
              '(the folder holding lernomatic/) to import its models, trainers and utilities under lernomatic.*')
        return 1 if shadowed else 0
    roots = legacy_roots()
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
    return 1 if counts['fails'] or shadowed else 0
