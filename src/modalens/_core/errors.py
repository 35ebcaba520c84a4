"""The one error base of modalens.

Every error that modalens raises on purpose, because an input, a file, a configuration or a run is not what it
should be, derives from :class:`ModalensError`. The command line turns these into one ``error:`` line and exit
status 2; anything else is a bug and shows its traceback with ``--debug``. Subclasses keep the builtin base they
had (most are also ``ValueError``) so that existing ``except ValueError`` code still catches them.
"""

from __future__ import annotations


class ModalensError(Exception):
    """Base of every error modalens raises about its inputs: the message names what was wrong and what to do."""


class ConfigurationError(ModalensError, ValueError):
    """An option or a configuration object holds a value modalens cannot use."""
