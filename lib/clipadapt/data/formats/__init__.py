"""Real datasets in the files their official code reads, each checked as it is read.

* retrieval benchmarks of Part II: :mod:`.msrvtt` (CLIP4Clip's JSON and CSV), :mod:`.didemo`,
  :mod:`.activitynet`, :mod:`.lsmdc` and :mod:`.msvd`, each returning a :mod:`.corpus`
  (pairs per split, their sizes checked against the published ones); :mod:`.safe_pickle`
  reads a caption pickle without letting it run code;
* :mod:`.multilabel_sets` -- MS-COCO 2014, PASCAL VOC 2007 and SCPNet's list files (chapter 6);
* :mod:`.classnames` -- the real datasets' class names as their files write them, which the
  miniature copies of :mod:`clipadapt.data.fixtures` carry.
"""
