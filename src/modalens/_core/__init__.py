"""The lowest room: the version, the error base, the registry helper and the atomic file writer.

It imports nothing else of modalens, so every other room may import it.
"""

from modalens._core.errors import ConfigurationError, ModalensError
from modalens._core.registry import Registry
from modalens._core.version import __version__

__all__ = ["ConfigurationError", "ModalensError", "Registry", "__version__"]
