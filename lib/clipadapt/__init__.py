"""clipadapt: the library that the Efficient CLIP Adaptation book builds and tests.

Modules (one idea each): ``profiles`` (tiny / colab / paper), ``models`` (load_clip,
freezing, parameter counts), ``flops`` (multiply-adds and timing), ``train`` (the training
loop and safetensors checkpoints), ``losses`` (contrastive losses), ``metrics`` (accuracy,
retrieval recall), ``pretrain`` (the tiny CLIP of chapter 1), ``data.worlds`` (synthetic
worlds), ``viz`` (figures), ``book`` (execute the chapters and build the book), ``bench``.
"""

__version__ = "0.1.0"
