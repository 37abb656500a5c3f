"""Lernomatic's API, running on Lightning.

Importing Lernomatic allows numpy arrays in weights-only `torch.load`, so code that calls a bare
`torch.load` on an old history file keeps working on torch >= 2.6. The package itself stays cheap
to import (the `lernomatic` command starts without torch): it registers numpy's types here only
when torch is already loaded, and every subpackage that works with torch (`models`, `model`,
`train`, `infer`, `param`) registers them when it is imported.

An old Lernomatic checkout named in LERNOMATIC_PATH (or given to `extend_path`) makes its own
modules importable under `lernomatic.*`, this project's winning (`lernomatic.legacy_path`).
`trust_modules('mynets')` lets checkpoints name your own model package (docs/reliability.md).
"""

import sys

from compat.codec.trust import trust_modules
from lernomatic.legacy_path import extend_path, install_from_environment

__version__ = '0.1.0'
__all__ = ['extend_path', 'trust_modules', '__version__']

install_from_environment()

if 'torch' in sys.modules:
    from compat.codec.safe_load import register_numpy_safe_globals

    register_numpy_safe_globals()
