"""The data model and loaders."""

from modalens.data.dataset import MODALITY_KINDS, DatasetError, MediaColumn, Modality, MultimodalDataset
from modalens.data.loaders import detect_format, list_formats, load_dataset, register_loader, save_dataset
from modalens.data.safe_pickle import UnsafePickleError

__all__ = [
    "MODALITY_KINDS",
    "DatasetError",
    "MediaColumn",
    "Modality",
    "MultimodalDataset",
    "UnsafePickleError",
    "detect_format",
    "list_formats",
    "load_dataset",
    "register_loader",
    "save_dataset",
]
