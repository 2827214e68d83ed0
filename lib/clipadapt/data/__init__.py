"""Data, by concern.

* ``worlds`` -- the synthetic worlds (images, videos with their reversal twins, multi-label
  scenes): small, fully known data that the ``tiny`` profile runs on;
* ``formats`` -- real datasets in the files their official code reads (MSR-VTT and the
  other retrieval benchmarks, MS-COCO / VOC 2007, class names as the files write them);
* ``fetch`` -- getting those datasets into the data root: every file as data, resumable
  downloads, checked unpacking (``python -m clipadapt.data.fetch NAME``);
* ``fixtures`` -- miniature copies of the real datasets in exactly their formats (the
  ``colab-smoke`` profile runs on them).

What the chapters call sits here, on top of those: ``fewshot`` (few-shot tasks, synthetic or in
CoOp's split files), ``video`` (mp4 writing, decord reading, the video-caption dataset),
``frames`` (which frames a video gives: clipadapt's segments and each official loader's rule),
``video_sets`` (Part II's sets for a profile; ``world_cache`` shares their rendered synthetic
videos between work folders), ``multilabel`` (incomplete labels,
weak and strong views), ``fixmatch`` (FixMatch's RandAugment as SCPNet's code has it, for the
official strong view), ``multitask`` (suites of related few-shot tasks: the synthetic world,
General-10), ``names`` (class and task names as the official code writes them into prompts)
and ``augment`` (the official recipes' training augmentations by name)."""
