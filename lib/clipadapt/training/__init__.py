"""How methods train, one path for chapters, ``reproduce`` and the benchmarks:

* ``recipe`` (one recipe: its fields, and the recipe card), ``recipes`` (the reader of the
  recipe files ``clipadapt/recipes/*.toml``: each method's official recipe with its sources,
  and how it trains under each profile, every deviation with its reason), ``budgets`` (each
  profile's training budgets, which the recipes' rules read), ``datacut`` (the data a colab
  profile cuts, as its recipe cards say), ``optim`` (the
  optimiser and schedule a recipe names, from ``torch.optim``), ``bertadam`` (CLIP4Clip's
  Adam without bias correction, and its warm-up cosine of the run's progress), ``loop`` (one training step:
  :class:`~clipadapt.training.loop.Trainer`), ``runstate`` (a run's whole state in a
  checkpoint, and its output folder), ``driver`` (prepare, fit, evaluate: the one driver).
"""
