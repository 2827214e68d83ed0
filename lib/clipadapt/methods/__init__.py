"""The adaptation methods, one file each, around a frozen open_clip model, exposing only
their own parameters: ``coop`` (learned text context), ``vpt`` (deep visual prompts),
``lora`` (low-rank updates of the fused attention projection, as a parametrization),
``vop`` (VoP's video prompts, every variant), ``scpnet`` (SCPNet's label-prior prompts and
self-supervision for incomplete multi-label recognition). :mod:`clipadapt.registry` builds them by name."""
