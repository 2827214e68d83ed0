"""Class and task names as the official code writes them into prompts.

Datasets name their classes for file systems: CoOp's split files keep ``american_bulldog``
(Oxford Pets), ``apple_pie`` (Food-101), ``indoor shopping_mall`` (SUN397) and
``Apply_Eye_Makeup`` (UCF-101). CoOp's and SoftCPT's trainers turn every ``_`` into a space
before tokenising (CoOp ``trainers/coop.py`` and ``zsclip.py``; SoftCPT ``trainers/mtcoop.py``
does the same to its task names), where CLIP's tokenizer would otherwise read ``_`` as a
token of its own. Some of CoOp's datasets also rename classes when they make their split
(``NEW_CNAMES`` in ``datasets/eurosat.py`` and ``datasets/caltech101.py``: ``AnnualCrop`` ->
``Annual Crop Land``, ``airplanes`` -> ``airplane``); its published split files hold the new
names, and a name read from the image folders gets them here.

:func:`prompt_name` is the one place that does this: every loader gives its ``classnames``
and task names through it, and every method that writes a prompt from a name calls it
again (a prompt name goes through unchanged, so doing it twice is harmless).
"""

from __future__ import annotations

import re

# CoOp's NEW_CNAMES, keyed by dataset (see _key for the spellings accepted)
RENAMES: dict[str, dict[str, str]] = {
    "eurosat": {  # CoOp datasets/eurosat.py
        "AnnualCrop": "Annual Crop Land",
        "Forest": "Forest",
        "HerbaceousVegetation": "Herbaceous Vegetation Land",
        "Highway": "Highway or Road",
        "Industrial": "Industrial Buildings",
        "Pasture": "Pasture Land",
        "PermanentCrop": "Permanent Crop Land",
        "Residential": "Residential Buildings",
        "River": "River",
        "SeaLake": "Sea or Lake",
    },
    "caltech101": {  # CoOp datasets/caltech101.py
        "airplanes": "airplane",
        "Faces": "face",
        "Leopards": "leopard",
        "Motorbikes": "motorbike",
    },
}


def _key(dataset: str) -> str:
    """``"EuroSAT"``, ``"eurosat"``, ``"caltech-101"``, ``"Caltech101"`` -> one key."""
    return re.sub(r"[^a-z0-9]", "", dataset.lower())


def prompt_name(name: str, dataset: str | None = None) -> str:
    """``name`` as the official code puts it into a prompt: the dataset's rename, if it has
    one for ``name``, then every underscore a space (``"american_bulldog"`` ->
    ``"american bulldog"``; ``("AnnualCrop", "eurosat")`` -> ``"Annual Crop Land"``)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a class or task name must be a non-empty string, got {name!r}")
    if dataset is not None:
        name = RENAMES.get(_key(dataset), {}).get(name, name)
    return name.replace("_", " ")


def prompt_names(names, dataset: str | None = None) -> list[str]:
    """:func:`prompt_name` of each of ``names``."""
    return [prompt_name(n, dataset) for n in names]


def prompts(template: str, names, dataset: str | None = None) -> list[str]:
    """``template`` (``"a photo of a {}."``) filled with each name's prompt text."""
    if "{}" not in template:
        raise ValueError(f"a prompt template needs a '{{}}' for the name, got {template!r}")
    return [template.format(n) for n in prompt_names(names, dataset)]
