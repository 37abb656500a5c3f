"""Lernomatic's API, running on Lightning.

Importing Lernomatic allows numpy arrays in weights-only `torch.load`, so code that calls a bare
`torch.load` on an old history file keeps working on torch >= 2.6. The package itself stays cheap
to import (the `lernomatic` command starts without torch): it registers numpy's types here only
when torch is already loaded, and every subpackage that works with torch (`models`, `model`,
`train`, `infer`, `param`) registers them when it is imported.
"""

import sys

__version__ = '0.1.0'

if 'torch' in sys.modules:
    from compat.serialization import register_numpy_safe_globals

    register_numpy_safe_globals()
