"""clipadapt: the library that the Efficient CLIP Adaptation book builds and tests.

One idea per module, in layers (a module imports only from its own layer and those above
it in this list; ``tests/test_imports.py`` checks it):

* foundations: ``files`` (atomic writes), ``seeds`` (every random stream's seed),
  ``profiles`` (tiny / colab / paper), ``flops`` (multiply-adds and timing), ``metrics``
  (accuracy, retrieval recall), ``losses`` (contrastive losses), ``viz`` (figures),
  ``distributed`` (data-parallel pieces: shards, gathers with gradients), ``memory`` (peak
  resident memory, sampled);
* ``checkpoints`` (safetensors files), ``runstate`` (a run's whole state, to resume it),
  ``train`` (the training loop), ``data`` (worlds, pixels, videos and the real-format
  loaders);
* ``models`` (load_clip, freezing, parameter counts);
* shared machinery: ``prompting`` (learned tokens inside open_clip's encoders),
  ``features`` (batched encoding, scaled-cosine logits, mean pooling), ``merge`` (token
  merging as pure functions), ``patching`` (swap open_clip's blocks for merging blocks);
* ``methods`` (one method, one file);
* ``tuning`` (what of a CLIP trains), ``adapt`` (zero-shot, linear-probe and text-head
  classifiers), ``retrieval`` (mean pooling for video);
* the method protocol: ``registry`` (every method by name), ``recipes`` (how each trains
  per profile), ``tasks`` (batches, loss and metrics of a task), ``runner`` (build, train,
  measure);
* the book's tools: ``pretrain`` (the tiny CLIP of chapter 1), ``book`` (execute the
  chapters and build the book; ``kernels``, the kernel client it executes them through),
  ``bench`` (benchmarks; TempMe's in ``bench_tempme``), ``reproduce`` (a method's recipe
  as one resumable command, on one GPU or many).
"""

__version__ = "0.1.0"
