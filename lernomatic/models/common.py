"""`LernomaticModel`: a wrapper around an `nn.Module` that carries the metadata to rebuild it.

Subclasses usually set `net`, `import_path`, `module_import_path`, `model_name` and `module_name`
in their own `__init__` without calling `super().__init__()`, so nothing here relies on the base
constructor having run: the class attributes below are the defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from compat.codec.model_import import load_state_dict_checked, rebuild_net, vet_model_names
from compat.codec.safe_load import safe_load
from compat.codec.trust import loading

__all__ = ['LernomaticModel']


class LernomaticModel:
    """Base class of Lernomatic model wrappers."""

    net: torch.nn.Module | None = None
    import_path: str = 'lernomatic.models.common'
    model_name: str = 'LernomaticModel'
    module_name: str | None = None
    module_import_path: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.net = None
        self.import_path = 'lernomatic.models.common'
        self.model_name = 'LernomaticModel'
        self.module_name = None
        self.module_import_path = None

    def __repr__(self) -> str:
        return self.get_model_name() or 'LernomaticModel'

    # ---- metadata
    def get_model_name(self) -> str:
        return self.model_name

    def get_model_path(self) -> str:
        return self.import_path

    def get_module_name(self) -> str | None:
        return self.module_name

    def get_module_import_path(self) -> str | None:
        return self.module_import_path

    def get_params(self) -> dict[str, Any]:
        """The model metadata dict that every Lernomatic checkpoint stores under 'model'."""
        params = {
            'model_state_dict': self.get_net_state_dict(),
            'model_name': self.get_model_name(),
            'model_import_path': self.get_model_path(),
            'module_name': self.get_module_name(),
            'module_import_path': self.get_module_import_path(),
        }
        get_model_args = getattr(self, 'get_model_args', None)  # optional: only subclasses that take args define it
        if callable(get_model_args):
            params['model_args'] = dict(get_model_args())
        return params

    def set_params(self, params: dict[str, Any]) -> None:
        """Rebuild `net` from a metadata dict: import the module class, construct it, load weights.

        The names in `params` pass the trust policy of `compat.codec.trust` (checked before anything is
        called); nothing on this object changes unless the whole rebuild succeeds.
        """
        net = rebuild_net(params, self, LernomaticModel)
        self.import_path = params['model_import_path']
        self.model_name = params['model_name']
        self.module_name = params['module_name']
        self.module_import_path = params['module_import_path']
        self.net = net

    def load_checkpoint(self, fname: str, model_key: str = 'model', trusted: bool = False,
                        trusted_modules: list[str] | None = None) -> None:
        """Load this model's part of a trainer checkpoint (the original read a misspelt key here).

        Args:
            fname: the checkpoint.
            model_key: the key its model metadata is under ('generator', ... in multi-model files).
            trusted: unpickle anything and import any module the file names (only for files you trust).
            trusted_modules: module prefixes (your model packages) the file may make us import.
        """
        from compat.codec.checkpoint import read_model_params
        with loading(fname, trusted, trusted_modules):
            params = read_model_params(safe_load(fname, trusted=trusted), fname, model_key)
            # an old model's own set_params imports what the file names: every name is checked first
            self.set_params(vet_model_names(params, self, LernomaticModel, f'[{model_key!r}]'))

    # ---- the wrapped network
    def get_net(self) -> torch.nn.Module:
        return self._require_net()

    def _require_net(self) -> torch.nn.Module:
        if self.net is None:
            raise ValueError(f'No network set in model {self!r}: assign self.net in __init__ '
                             'or load one with set_params / load_checkpoint')
        return self.net

    def get_net_state_dict(self) -> dict[str, Any]:
        return self._require_net().state_dict()

    def set_net_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load weights into `net` (the original's version silently did nothing)."""
        load_state_dict_checked(self._require_net(), state_dict, f'model {self!r}')

    def get_model_parameters(self) -> Iterator[torch.nn.Parameter]:
        return self._require_net().parameters()

    def get_num_layers(self) -> int:
        """The number of parameter tensors, the unit `freeze_to` counts in."""
        return sum(1 for _ in self._require_net().parameters())

    def set_train(self) -> None:
        self._require_net().train()

    def set_eval(self) -> None:
        self._require_net().eval()

    def send_to(self, device: torch.device | str) -> None:
        self._require_net().to(device)

    def forward(self, X: Any) -> Any:
        return self._require_net()(X)

    def zero_grad(self) -> None:
        self._require_net().zero_grad()

    # ---- freezing, counted in parameter tensors (a weight and its bias are two), as the original counted
    def _set_requires_grad(self, flag: bool, last: int | None = None) -> None:
        """Set `requires_grad` on positions 0..last of `net.parameters()` (all when `last` is None)."""
        for index, param in enumerate(self._require_net().parameters()):
            if last is not None and index > last:
                break
            param.requires_grad = flag

    def freeze_to(self, N: int) -> None:
        """Freeze parameter tensors 0..N inclusive (N <= 0: the first only); the rest stay as they are."""
        self._set_requires_grad(False, max(N, 0))

    def unfreeze_to(self, N: int) -> None:
        """Unfreeze parameter tensors 0..N inclusive (N <= 0: the first only)."""
        self._set_requires_grad(True, max(N, 0))

    def freeze(self) -> None:
        """Freeze every parameter tensor: what the original's code did (its docstring said all but the last)."""
        self._set_requires_grad(False)

    def freeze_all(self) -> None:
        self._set_requires_grad(False)

    def unfreeze(self) -> None:
        self._set_requires_grad(True)
