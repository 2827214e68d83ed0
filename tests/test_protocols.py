"""Methods declare what they are: the interface of their task kind (checked when a run is
prepared), the optional protocols only the methods that need them carry, and a spec
registered beside their own code."""

import copy

import pytest
import torch
from clipadapt.core import models
from clipadapt.methods import protocol, registry, scpnet, spec
from clipadapt.methods.protocol import InterfaceError, Method
from clipadapt.tasks import ClassificationTask
from clipadapt.tasks.protocol import Task
from clipadapt.training import driver
from clipadapt.training.recipe import Recipe
from torch import nn

BOOK = ("zero-shot", "linear probe", "CoOp", "VPT-deep", "LoRA", "full fine-tune", "mean pooling", "VoP", "TempMe",
        "ZS-CLIP", "LP-CLIP", "CoOp-CA", "CoOp-MT", "SoftCPT", "SCPNet")


@pytest.fixture
def registered():
    """Register specs for one test; they leave the registry when it ends, pass or fail."""
    names = []

    def add(s: spec.MethodSpec) -> spec.MethodSpec:
        names.append(s.name)
        return registry.register(s)

    yield add
    for name in names:
        registry.unregister(name)


class TextOnly(Method):
    """A retrieval method that forgot its video encoder."""

    def __init__(self, clip):
        super().__init__()
        self.clip = models.freeze(clip)

    def encode_text(self, ids):
        return self.clip.encode_text(ids)


class NeverTrained(Task):
    """A retrieval task whose loader must never be asked for: the check comes first."""

    kind = "retrieval"
    context: dict = {}
    n_train = 8

    def loader(self, module, recipe, seed, device):
        raise AssertionError("the run reached training with a method that cannot encode videos")


def test_a_retrieval_method_without_encode_video_fails_when_prepared(registered, tiny_clip):
    clip, _, tokenizer = tiny_clip
    registered(spec.MethodSpec("text only", "retrieval", lambda c, *rest: TextOnly(c), "no video encoder"))
    with pytest.raises(InterfaceError, match="encode_video") as err:
        driver.prepare("text only", clip, tokenizer, NeverTrained(), recipe=Recipe(lr=0.1, steps=2, batch_size=4))
    message = str(err.value)
    assert "'text only'" in message and "retrieval" in message and "VideoTextRetriever" in message
    assert "lacks encode_video " in message  # encode_text is there


class Pictures:
    """What ClassificationTask reads of a few-shot task: 12 random pictures of 3 classes."""

    classnames = ["circle", "square", "triangle"]
    template = "a photo of a {}."

    def __init__(self, size: int):
        self.x = torch.rand(12, 3, size, size, generator=torch.Generator().manual_seed(0))
        self.y = torch.arange(12) % 3

    def train_set(self, shots):
        return self.x, self.y

    def test_set(self):
        return self.x, self.y


class ToyProbe(Method):
    """A linear head of its own on a frozen CLIP's image features."""

    def __init__(self, clip, n_classes: int):
        super().__init__()
        self.clip = models.freeze(clip)
        self.head = nn.Linear(clip.visual.output_dim, n_classes)

    def forward(self, images):  # (B, 3, H, W) -> (B, C)
        return self.head(self.clip.encode_image(images))


def test_a_method_registered_from_outside_trains_through_the_driver(registered, tiny_clip, one_thread):
    clip, _, tokenizer = tiny_clip
    size = clip.visual.image_size
    task = ClassificationTask(Pictures(size if isinstance(size, int) else size[0]), shots=4)
    registered(spec.MethodSpec("toy probe", "classification",
                               lambda c, tok, context, options, variant: ToyProbe(c, len(context["classnames"])),
                               "a linear head on frozen features"))
    assert registry.methods("classification")[-1] == "toy probe"  # after the book's own
    recipe = Recipe(lr=0.05, steps=6, batch_size=4, warmup=0)
    result = driver.run("toy probe", clip, tokenizer, task, recipe=recipe, keep=True)
    assert result.steps == 6 and len(result.history.loss) == 6
    assert result.trainable == sum(p.numel() for p in result.module.head.parameters())
    assert 0 <= result.metrics["accuracy"] <= 1 and result.macs > 0


def test_the_registry_keeps_the_books_order():
    assert tuple(registry.REGISTRY) == BOOK  # the book's order, whichever file was imported first


def test_register_refuses_a_second_method_of_a_name():
    with pytest.raises(ValueError, match="two methods are named 'CoOp'"):
        registry.register(spec.MethodSpec("CoOp", "classification", lambda *a: None, "another CoOp"))
    assert registry.get("CoOp").build.__module__ == "clipadapt.methods.coop"


def test_the_base_carries_only_what_every_method_has():
    for hook in ("views", "averaged", "training_loss", "resume_state", "load_resume_state"):
        assert not hasattr(Method, hook), hook
    assert {protocol.OwnTraining, protocol.KeepsState} <= set(scpnet.SCPNet.__mro__)  # SCPNet declares both
    assert {"views", "training_loss", "averaged"} <= set(vars(scpnet.SCPNet))


def test_the_helpers_give_a_plain_method_the_defaults(tiny_clip):
    clip = copy.deepcopy(tiny_clip[0])  # the toy method freezes it; the session's CLIP stays as it was
    plain = ToyProbe(clip, 3)
    assert protocol.views(plain) == ("weak",) and protocol.training_loss(plain, {}) is None
    assert protocol.averaged(plain) is plain and protocol.resume_state(plain) == {}
    protocol.load_resume_state(plain, {})
    with pytest.raises(ValueError, match="keeps no state beside its parameters"):
        protocol.load_resume_state(plain, {"average": torch.zeros(1)})


class FrozenWithoutHead(ToyProbe):
    frozen_image_encoder = True  # so a task trains logits_from_features on stored features


class HalfState(ToyProbe):
    def resume_state(self):
        return {}


def test_the_check_names_every_gap(tiny_clip):
    clip = copy.deepcopy(tiny_clip[0])  # the toy method freezes it; the session's CLIP stays as it was
    protocol.check("toy probe", "classification", ToyProbe(clip, 3))
    protocol.check("toy probe", "a kind of its own", ToyProbe(clip, 3))  # a new kind's interface is its own
    with pytest.raises(InterfaceError, match="lacks logits_from_features of the classification interface"):
        protocol.check("frozen", "classification", FrozenWithoutHead(clip, 3))
    with pytest.raises(InterfaceError, match="has only part of KeepsState: it lacks load_resume_state"):
        protocol.check("half", "classification", HalfState(clip, 3))
    with pytest.raises(InterfaceError, match="lacks classifier of the multitask interface MultiTaskClassifier"):
        protocol.check("toy probe", "multitask", ToyProbe(clip, 3))
    with pytest.raises(InterfaceError, match="lacks forward"):
        protocol.check("text only", "multilabel", TextOnly(clip))
    with pytest.raises(InterfaceError, match="not a clipadapt.methods.protocol.Method"):
        protocol.check("bare", "classification", nn.Linear(2, 2))
