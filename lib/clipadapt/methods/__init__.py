"""The adaptation methods, one file each, around a frozen open_clip model, exposing only
their own parameters:

* ``protocol`` (:class:`~clipadapt.methods.protocol.Method`, the base every method carries;
  each task kind's interface as a ``typing.Protocol`` and the check of a built method against
  it; the optional protocols ``OwnTraining`` and ``KeepsState``), ``spec``
  (:class:`~clipadapt.methods.spec.MethodSpec`, what each method file registers about
  itself) and ``registry`` (every method by name, in the book's order);
* ``baselines`` (the freezing policies, zero-shot, the linear probe; ``probe_search``: the
  official probe's fit, scikit-learn's L-BFGS with C searched on a validation split), ``finetune`` (LoRA
  and full fine-tuning of CLIP's own weights as a classifier), ``mean_pool`` (mean pooling
  of frame features, CLIP4Clip's video baseline);
* ``coop`` (learned text context), ``vpt`` (deep visual prompts), ``lora`` (low-rank updates
  of the fused attention projection, as a parametrization);
* ``vop`` (VoP's video prompts, every variant), ``tome`` (ToMe on the image tower, over
  :mod:`clipadapt.core.merge` and :mod:`clipadapt.core.patching`), ``tempme`` (TempMe's
  ImgMe and ClipMe blocks) with its schedule as data in ``tempme_schedule``;
* ``scpnet`` (SCPNet's label-prior prompts and self-supervision for incomplete multi-label
  recognition), ``softcpt`` (SoftCPT's task-shared meta network and the multi-task baselines).
"""
