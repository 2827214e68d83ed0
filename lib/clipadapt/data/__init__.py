"""Data: ``worlds`` (the synthetic image, video and caption worlds), ``video`` (mp4 writing, decord reading, frame sampling, the
video-caption dataset), ``video_sets`` (Part II's sets per profile), and the real-format
loaders ``fewshot`` (few-shot tasks, CoOp's split files) and ``msrvtt`` (MSR-VTT);
``download`` (the real datasets fetched, verified and unpacked into one data root),
``fixtures`` (miniature copies of those datasets in their real formats, for colab-smoke),
``multitask`` (suites of related few-shot tasks: the synthetic world, General-10), ``multilabel``
(the multi-label scene world, incomplete labels, weak and strong views) and ``multilabel_sets``
(MS-COCO 2014, PASCAL VOC 2007 and SCPNet's list files); ``augment`` (the official recipes'
training augmentations by name, drawn per example)."""
