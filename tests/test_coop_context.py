"""CoOp's prompts around a context given from outside (SoftCPT's meta network makes one)."""

import copy

import pytest
import torch

from clipadapt.methods import coop


def test_a_context_from_outside(tiny_clip):
    clip, _, tok = tiny_clip
    m = coop.CoOp(copy.deepcopy(clip), tok, ["circle", "square"], n_ctx=4)
    with torch.no_grad():
        own = m.text_features()
        assert torch.equal(m.text_features(m.ctx), own)  # the same context given explicitly
        per_class = m.ctx.detach().expand(2, -1, -1).clone()
        assert torch.allclose(m.text_features(per_class), own, atol=1e-6)
        other = torch.randn(4, 128)
        assert not torch.allclose(m.text_features(other), own)
    generated = torch.randn(4, 128, requires_grad=True)  # gradients flow back to the generator
    m.text_features(generated).sum().backward()
    assert generated.grad is not None and generated.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"a context must be \(4, 128\) or \(2, 4, 128\), got \(3, 128\)"):
        m.text_features(torch.randn(3, 128))
