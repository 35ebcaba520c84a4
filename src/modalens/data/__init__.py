"""The data model and loaders."""

from modalens.data.dataset import MODALITY_KINDS, DatasetError, MediaColumn, Modality, MultimodalDataset

__all__ = ["MODALITY_KINDS", "DatasetError", "MediaColumn", "Modality", "MultimodalDataset"]
