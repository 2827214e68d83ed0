"""The adaptation methods, one file each, around a frozen open_clip model, exposing only
their own parameters: ``coop`` (learned text context), ``vpt`` (deep visual prompts),
``lora`` (low-rank updates of the fused attention projection, as a parametrization),
``vop`` (VoP's video prompts, every variant), ``tome`` (ToMe on the image tower, over
:mod:`clipadapt.merge` and :mod:`clipadapt.patching`), ``tempme`` (TempMe's ImgMe and ClipMe
blocks) with its schedule as data in ``tempme_schedule``, ``scpnet`` (SCPNet's label-prior prompts and
self-supervision for incomplete multi-label recognition), ``softcpt`` (SoftCPT's task-shared meta network
and the multi-task baselines). :mod:`clipadapt.registry` builds them by name."""
