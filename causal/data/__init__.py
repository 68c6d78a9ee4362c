"""Data layer: sources registered as views in an embedded engine, joined by the spec's SQL,
validated into a :class:`~causal.data.dataset.Dataset`."""

from causal.data.dataset import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
