"""Targets: where a version goes live. See :mod:`lastgood.targets.base` for the contract."""

from lastgood.targets.base import Release, Target
from lastgood.targets.registry import open_target, register, target_class

__all__ = ["Release", "Target", "open_target", "register", "target_class"]
