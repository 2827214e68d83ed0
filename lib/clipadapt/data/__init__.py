"""Data: ``worlds`` (the synthetic image, video and caption worlds), ``video`` (mp4 writing, decord reading, frame sampling, the
video-caption dataset), ``video_sets`` (Part II's sets per profile), and the real-format
loaders ``fewshot`` (few-shot tasks, CoOp's split files) and ``msrvtt`` (MSR-VTT), and
the other retrieval benchmarks of Part II, ``didemo``, ``activitynet``, ``lsmdc`` and ``msvd``
(each returning a ``corpus``: pairs per split, checked; ``safe_pickle`` reads a caption pickle
without letting it run code);
``download`` (the real datasets fetched, checked and unpacked into one data root) with
``resources`` (every file as data: URL, hash, what must exist), ``transfer`` (HTTP downloads
that resume) and ``archives`` (zip/tar unpacking and the content checks),
``fixtures`` (miniature copies of those datasets in their real formats, for colab-smoke),
``multitask`` (suites of related few-shot tasks: the synthetic world, General-10), ``multilabel``
(the multi-label scene world, incomplete labels, weak and strong views) and ``multilabel_sets``
(MS-COCO 2014, PASCAL VOC 2007 and SCPNet's list files); ``names`` (class and task names as the
official code writes them into prompts), ``classnames`` (the real datasets' class names, which
the fixtures carry) and ``augment`` (the official recipes' training augmentations by name,
drawn per example)."""
