"""`lernomatic.model.common` is `lernomatic.models.common`: the same class, not a copy."""

from lernomatic.models.common import LernomaticModel

__all__ = ['LernomaticModel']
