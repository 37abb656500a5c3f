"""Lernomatic's API, running on Lightning.

Importing the package allows numpy arrays in weights-only `torch.load`, so code that calls a bare
`torch.load` on an old history file keeps working on torch >= 2.6.
"""

from compat.serialization import register_numpy_safe_globals

register_numpy_safe_globals()

__version__ = '0.1.0'
