"""Backbones behind one registry: ``hf:``, ``timm:``, ``torchvision:`` and packaged short names."""

from .base import PACKAGED, SOURCES, Backbone, list_backbones, resolve

__all__ = ["Backbone", "resolve", "list_backbones", "SOURCES", "PACKAGED"]
