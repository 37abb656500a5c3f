"""The `lernomatic` command: look inside, convert, plot and export Lernomatic files.

This module imports only the standard library: `lernomatic --help`, `--version` and every
subcommand's `--help` start without torch, numpy or Lightning. The paths on the command line are
checked next (still without them), and only then is the subcommand's module imported.
Every file is read with weights-only loading unless `--trusted` is given.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from compat.codec.advice import Advice, advising  # light: the standard library only
from compat.errors import CheckpointError
from compat.text import one_line
from lernomatic.cli.paths import CommandError, check_input, check_output

__all__ = ['main', 'build_parser']

log = logging.getLogger('lernomatic.cli')

MAX_LEVEL = 100  # an indentation of four spaces per level keeps each line within a few hundred characters

# What matplotlib's Agg canvas writes with the packages this project installs (pgf needs LaTeX; raw and
# rgba are bare pixel buffers, not image files).
PLOT_FORMATS = ('png', 'jpg', 'jpeg', 'pdf', 'svg', 'svgz', 'eps', 'ps', 'tif', 'tiff', 'webp', 'gif')

# A refusal made while a command works suggests the command's own flags first.
COMMAND_ADVICE = Advice(
    trust_module='--trusted-modules {top} (or LERNOMATIC_TRUSTED_MODULES={top})',
    find_module='give the folder that holds {top} with --import-path DIR (or PYTHONPATH=DIR)',
    trust_file='Give --trusted only if you trust where the file came from.',
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2), like every other user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f'{self.prog}: {one_line(message)} (see {self.prog} --help)\n')


class _Version(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        from lernomatic import __version__
        try:
            installed = version('lernomatic-lightning')
        except PackageNotFoundError:  # run from a source tree that was never installed
            installed = __version__
        print(f'lernomatic {installed}')
        parser.exit(0)


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type` for integers in [low, high]; beyond them, absurd values become usage errors."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(text)
        return value
    parse.__name__ = f'integer from {low} to {high}'  # argparse names the type in its message
    return parse


def _image_path(text: str) -> Path:
    """An argparse `type` for `plot -o`: a file name whose extension names a format it can write."""
    path = Path(text)
    extension = path.suffix[1:].lower()
    if extension not in PLOT_FORMATS:
        found = f'.{path.suffix[1:]} is not an image format plot writes' if extension else 'has no extension'
        raise argparse.ArgumentTypeError(f'{text}: {found}; end the name with one of '
                                         f'{", ".join("." + name for name in PLOT_FORMATS)}')
    return path


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each names the module that runs it and the paths to check first."""
    parser = _Parser(prog='lernomatic', description='Look inside, convert, plot and export Lernomatic '
                     'checkpoint and history files.')
    parser.add_argument('--version', action=_Version, help='print the version and exit')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    def command(name: str, help_text: str, module: str, inputs: Sequence[str], outputs: Sequence[str] = ()):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument('--trusted', action='store_true',
                         help='unpickle arbitrary objects (only for files whose source you trust)')
        sub.add_argument('--import-path', action='append', default=[], type=Path, metavar='DIR',
                         help='a folder holding your model modules, searched first (as on PYTHONPATH); repeatable')
        sub.set_defaults(module=module, inputs=tuple(inputs), outputs=tuple(outputs), directories=())
        return sub

    inspect = command('inspect', 'print the tree of keys and types of a checkpoint or history file',
                      'cmd_inspect', inputs=['file'])
    inspect.add_argument('file', type=Path)
    inspect.add_argument('--max-level', type=_bounded_int(0, MAX_LEVEL), default=3, metavar='N',
                         help=f'how deep to descend (default 3, at most {MAX_LEVEL})')
    inspect.add_argument('--max-lines', type=_bounded_int(1, 10**7), default=1000, metavar='N',
                         help='stop after this many lines (default 1000)')
    inspect.add_argument('--show-data', action='store_true',
                         help='print the first values of tensors, arrays and lists')

    convert = command('convert', 'Lernomatic .pkl checkpoint to a Lightning .ckpt of the adapter, or back',
                      'cmd_convert', inputs=['input'], outputs=['output'])
    convert.add_argument('input', type=Path)
    convert.add_argument('output', type=Path, help='the file to write (its directory must exist)')
    convert.add_argument('--trusted-modules', action='append', default=[], metavar='PREFIX',
                         help='a module prefix (your model package) the file may name; repeatable '
                         '(also LERNOMATIC_TRUSTED_MODULES)')

    plot = command('plot', 'plot loss, validation loss and accuracy of a history file as an image',
                   'cmd_plot', inputs=['history'], outputs=['output'])
    plot.add_argument('history', type=Path)
    plot.add_argument('-o', '--output', type=_image_path, metavar='OUT',
                      help=f'the image to write, its format named by its extension ({", ".join(PLOT_FORMATS)}); '
                      'default: beside the history file, as .png; its directory must exist')

    board = command('tensorboard', 'show history files (or the runs of a checkpoint directory) in TensorBoard: '
                    'write their events, then serve them', 'cmd_tensorboard', inputs=['histories'])
    board.set_defaults(directories=('histories',))
    board.epilog = ('Without --logdir: events in a temporary directory, served until Ctrl-C, then removed. '
                    'With --no-serve: write the events and exit (for scripts).')
    board.add_argument('histories', type=Path, nargs='+', metavar='HISTORY',
                       help='history files, each a run named after the file; or a checkpoint directory: its '
                       '*_history.pkl files and the TensorBoard event files under it become runs')
    board.add_argument('--logdir', type=Path, metavar='DIR',
                       help='write the runs here (DIR is created if missing, not its parents)')
    board.add_argument('--port', type=_bounded_int(0, 65535), metavar='N',
                       help='serve on this port of localhost (default: 6006 or the next free one; 0: any free '
                       'port)')
    board.add_argument('--no-serve', action='store_true', help='only write the events, start no server')

    doctor = commands.add_parser('doctor', help='which modules of an old checkout (LERNOMATIC_PATH) are used, '
                                 'replaced by this project, or fail to import',
                                 description='Lists every module of the old Lernomatic checkouts on LERNOMATIC_PATH: '
                                 "'tree' (imported from the checkout), 'replaced' (this project provides it) or "
                                 "'fails' (importing it raised; the error follows), after a 'shadowed' line for each "
                                 "of this project's packages that an old checkout's folder stands in front of. Exit "
                                 'status 2 when an entry of LERNOMATIC_PATH names no checkout, 1 when a module fails '
                                 'or a package is shadowed.')
    doctor.add_argument('--no-import', action='store_true',
                        help="list without importing (no module's code runs; failures are not found)")
    doctor.set_defaults(module='cmd_doctor', inputs=(), outputs=())
    return parser


def _check_paths(args: argparse.Namespace) -> None:
    """The declared inputs can be read, the outputs' directories exist, and so do the --import-path folders."""
    for folder in getattr(args, 'import_path', ()):
        if not folder.is_dir():
            raise CommandError(f'--import-path {folder}: ' + ('is not a directory' if folder.exists() else
                                                              'no such directory'))
    for name in args.inputs:
        value = getattr(args, name)
        for path in value if isinstance(value, list) else [value]:
            if not (name in args.directories and path.is_dir()):  # a directory the command lists itself
                check_input(path)
    for name in args.outputs:
        if getattr(args, name) is not None:
            check_output(getattr(args, name))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings as one line each, without the library file and source line they come from."""
    log.warning('lernomatic: %s: %s', category.__name__, one_line(str(message)))


_HANDLER = logging.StreamHandler()  # stderr, bare messages: each is already one line naming its subject
_HANDLER.setFormatter(logging.Formatter('%(message)s'))


def _setup_logging() -> None:
    root = logging.getLogger('lernomatic')
    if _HANDLER not in root.handlers:  # main() may run more than once in a process
        root.addHandler(_HANDLER)
    root.setLevel(logging.INFO)
    root.propagate = False
    warnings.showwarning = _show_warning


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; a user error or an unusable file is exit status 2 and one line on stderr.

    Args:
        argv: the arguments after the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 on a user error.
    """
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        _check_paths(args)
        # the user's folders first, as PYTHONPATH puts them; the trust policy still decides what may be imported
        sys.path[:0] = [str(folder.resolve()) for folder in getattr(args, 'import_path', ())]
        module = importlib.import_module(f'lernomatic.cli.{args.module}')
        try:
            with advising(COMMAND_ADVICE):
                return module.run(args)
        except CheckpointError as error:
            raise CommandError(str(error)) from None
    except CommandError as error:
        # long enough for a path, a field and its fix; a file's values in it are already cut short (short_repr)
        print(f'lernomatic {args.command}: {one_line(str(error), limit=600)}', file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `lernomatic inspect ... | head`: the reader left; say nothing more, not even when stdout is flushed at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as error:  # a write refused or a disk full: about a path, not a bug
        where = f'{error.filename}: ' if error.filename else ''
        print(f'lernomatic {args.command}: {where}{one_line(error.strerror or str(error))}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
