"""Tasks: what a method is trained on and measured by, one module per task family.

* ``protocol`` -- :class:`~clipadapt.tasks.protocol.Task`, everything the driver asks of a
  task, and :class:`~clipadapt.tasks.protocol.Loader`, how a task feeds training;
* ``classification`` -- few-shot image classification, accuracy (Part I);
* ``retrieval`` -- text-video retrieval, R@K both ways and the reversal test (Part II);
* ``multilabel`` -- multi-label recognition with incomplete labels, mAP (SCPNet, chapter 6);
* ``multitask`` -- many few-shot classification tasks trained at once (SoftCPT, chapter 7).

:data:`TASKS` maps each kind (``MethodSpec.task``) to its class. How a chapter builds each
kind of task from its data is :mod:`clipadapt.experiments.build`.
"""

from __future__ import annotations

from .classification import ClassificationTask
from .multilabel import MultiLabelTask
from .multitask import MultiTaskClassificationTask
from .protocol import Loader, Task
from .retrieval import RetrievalTask

TASKS: dict[str, type[Task]] = {cls.kind: cls for cls in (
    ClassificationTask, RetrievalTask, MultiTaskClassificationTask, MultiLabelTask)}

__all__ = ["TASKS", "ClassificationTask", "Loader", "MultiLabelTask", "MultiTaskClassificationTask",
           "RetrievalTask", "Task"]
