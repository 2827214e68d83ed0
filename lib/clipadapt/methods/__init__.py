"""The adaptation methods, each a small module around a frozen open_clip model that
exposes only its own parameters: ``coop`` (learned text context), ``vpt`` (deep visual
prompts), ``lora`` (low-rank updates of the attention projections)."""
