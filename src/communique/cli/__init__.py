"""The ``communique`` command line: thin commands over the same use cases as the API.

Each module registers its commands on the one group, ``main``; importing them
declares commands and does nothing else.
"""

from communique.cli import (  # noqa: F401
    accounts_cmd, audit_cmd, collections_cmd, data_cmd, detect_cmd, keys_cmd, peers_cmd,
    serving, standing_cmd,
)
from communique.cli.base import main, with_store
from communique.cli.collections_cmd import add_collection

__all__ = ["add_collection", "main", "with_store"]
