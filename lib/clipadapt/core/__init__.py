"""The pieces every method is built from, below everything else (they import nothing of
clipadapt's but each other and :mod:`clipadapt.profiles`):

* ``files`` (atomic writes, the data root), ``seeds`` (every random stream's seed),
  ``pixels`` (CLIP's pixel normalisation), ``checkpoints`` (safetensors files),
  ``distributed`` (shards, gathers with gradients);
* ``flops`` (multiply-adds and timing), ``live_memory`` (the bytes tensors hold, on any
  device), ``resident`` (peak resident memory of a block), ``metrics`` (accuracy, retrieval
  recall, mAP), ``evidence`` (comparisons over seeds, paired, with their verdicts),
  ``losses`` (contrastive and partial-label losses), ``ema`` (the decay of a moving average
  of the weights);
* ``models`` (load_clip, freezing, parameter counts), ``precision`` (a recipe's precision;
  CLIP in float16 as OpenAI's code runs it), ``features`` (batched encoding,
  scaled-cosine logits, mean pooling), ``prompting`` (learned tokens inside open_clip's
  encoders), ``merge`` (token merging as pure functions), ``patching`` (swap open_clip's
  blocks for merging blocks).
"""
