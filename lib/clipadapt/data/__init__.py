"""Data: ``worlds`` (the synthetic image, video and caption worlds), ``pixels`` (CLIP's
pixel normalisation), ``video`` (mp4 writing, decord reading, frame sampling, the
video-caption dataset), ``video_sets`` (Part II's sets per profile), and the real-format
loaders ``fewshot`` (few-shot tasks, CoOp's split files) ``msrvtt`` (MSR-VTT); ``multilabel`` (the multi-label
scene world, incomplete labels, weak and strong views) and ``multilabel_sets`` (MS-COCO 2014,
PASCAL VOC 2007 and SCPNet's list files)."""
