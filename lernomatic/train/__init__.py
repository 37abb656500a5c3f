"""Lernomatic trainers (`lernomatic.train.trainer.Trainer`)."""

# Its modules work with torch: allow numpy in weights-only loads, the promise `import lernomatic` keeps
# cheaply only when torch is already loaded (see lernomatic/__init__.py).
from compat.codec.safe_load import register_numpy_safe_globals

register_numpy_safe_globals()
