"""`lernomatic inspect FILE`: the tree of keys and types of any `torch.save` file."""

from __future__ import annotations

import argparse
import itertools
import logging

from compat.codec.safe_load import safe_load
from lernomatic.cli.tree import tree_lines

__all__ = ['run']

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    """Print at most `--max-lines` lines of the tree; say on stderr when the tree was longer."""
    data = safe_load(args.file, trusted=args.trusted)
    lines = tree_lines(data, args.max_level, args.show_data, name=str(args.file))
    for line in itertools.islice(lines, args.max_lines):
        print(line)
    if next(lines, None) is not None:
        log.warning('lernomatic inspect: output stopped after %d lines (raise --max-lines to see more)',
                    args.max_lines)
    return 0
