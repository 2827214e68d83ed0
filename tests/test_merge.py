"""Token merging (clipadapt.core.merge): bipartite soft matching, sizes, provenance, frame grouping."""

import pytest
import torch

from clipadapt.core import merge as tm


def _tokens(B=3, N=17, C=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, N, C, generator=g)


def test_r_zero_is_identity():
    x = _tokens()
    merge, unmerge = tm.bipartite_soft_matching(x, 0)
    assert merge(x) is x and unmerge(x) is x
    y, size = tm.merge_wavg(merge, x)
    assert torch.equal(y, x) and torch.equal(size, torch.ones(3, 17, 1))


@pytest.mark.parametrize("N, r, protected", [(17, 1, 1), (17, 8, 1), (50, 7, 1), (49, 10, 0), (20, 4, 3), (20, 5, 4)])
def test_tokens_go_from_n_to_n_minus_r(N, r, protected):
    x = _tokens(N=N)
    merge, unmerge = tm.bipartite_soft_matching(x, r, protected)
    y = merge(x)
    assert y.shape == (3, N - r, 8)
    assert unmerge(y).shape == x.shape


def test_r_is_clipped_to_what_can_merge():
    x = _tokens(N=17)
    merge, _ = tm.bipartite_soft_matching(x, 100, protected=1)
    assert merge(x).shape[1] == 17 - 8 == 17 - tm.mergeable(17, 1)
    assert tm.token_counts(17, [100, 100, 0, 1], protected=1) == [9, 5, 5, 4]


def test_protected_tokens_come_out_unchanged_and_first():
    x = _tokens(N=21)
    for p in (1, 2, 3, 4):
        merge, _ = tm.bipartite_soft_matching(x, 6, protected=p)
        y, _ = tm.merge_wavg(merge, x)
        assert torch.equal(y[:, :p], x[:, :p])


def _merge_layers(x, rs, protected=1):
    """Merge features (as size-weighted means), sizes and provenance through several layers,
    with a different metric in each layer."""
    size = source = None
    for i, r in enumerate(rs):
        merge, _ = tm.bipartite_soft_matching(x + 0.3 * _tokens(*x.shape, seed=i + 1), r, protected)
        source = tm.merge_source(merge, x, source)
        x, size = tm.merge_wavg(merge, x, size)
    return x, size, source


def test_sizes_sum_to_n_and_stay_positive():
    x0 = _tokens(N=33)
    x, size, _ = _merge_layers(x0, [4, 4, 4, 3])
    assert x.shape[1] == 33 - 15
    assert torch.equal(size.sum(1).squeeze(-1), torch.full((3,), 33.0))
    assert (size > 0).all()


def test_provenance_is_a_partition_and_explains_the_merged_features():
    x0 = _tokens(N=33)
    x, size, source = _merge_layers(x0, [4, 4, 4, 3])
    assert source.shape == (3, 18, 33)
    assert set(source.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(source.sum(1), torch.ones(3, 33))  # every input in exactly one output token
    assert torch.equal(source.sum(-1, keepdim=True), size)
    # merging size-weighted means of means = the plain mean of the patches each token holds
    expected = source @ x0 / source.sum(-1, keepdim=True)
    assert torch.allclose(x, expected, atol=1e-6)
    assert torch.equal(source[:, 0, 0], torch.ones(3))  # the class token holds only itself


def test_unmerge_gives_every_input_the_value_of_its_token():
    x = _tokens(N=25)
    for protected in (0, 1, 2):
        merge, unmerge = tm.bipartite_soft_matching(x, 7, protected)
        source = tm.merge_source(merge, x)
        y = merge(x)
        assert torch.equal(unmerge(y), source.transpose(1, 2) @ y)


def test_proportional_bias_is_log_size_on_the_key_axis():
    size = torch.tensor([[[1.0], [2.0], [4.0]]])
    bias = tm.proportional_bias(size)
    assert bias.shape == (1, 1, 1, 3)
    assert torch.allclose(bias.flatten(), torch.log(torch.tensor([1.0, 2.0, 4.0])))


def _labelled_frames(B, T, N):
    """x[b*T + t, n] = (b, t, n): every token says where it came from."""
    b, t, n = torch.meshgrid(torch.arange(B), torch.arange(T), torch.arange(N), indexing="ij")
    return torch.stack([b, t, n], dim=-1).reshape(B * T, N, 3)


@pytest.mark.parametrize("group, prefix", [(2, 1), (3, 1), (6, 1), (2, 2), (3, 0)])
def test_group_frames_round_trips_and_puts_class_tokens_first(group, prefix):
    B, T, N = 2, 6, 5
    x = _labelled_frames(B, T, N)
    y = tm.group_frames(x, group, prefix, frames=T)
    assert y.shape == (B * T // group, group * N, 3)
    assert torch.equal(tm.ungroup_frames(y, group, prefix), x)
    # first clip of the first video: [prefix tokens of frames 0..g-1] then [rest of frame 0], ...
    head = [(0, t, n) for t in range(group) for n in range(prefix)]
    tail = [(0, t, n) for t in range(group) for n in range(prefix, N)]
    assert y[0].tolist() == [list(v) for v in head + tail]


def test_group_frames_carries_sizes_and_vop_f_layout():
    x = torch.randn(2 * 4, 7, 16)
    y = tm.group_frames(x, group=4)  # VoP^F: [C_1..C_4] then all patches of frames 1..4
    frames = x.reshape(2, 4, 7, 16)
    assert torch.equal(y[:, :4], frames[:, :, 0])
    assert torch.equal(y[:, 4:], frames[:, :, 1:].flatten(1, 2))
    assert tm.group_frames(tm.start_size(x), 4).shape == (2, 28, 1)


def test_errors_name_the_bad_values():
    with pytest.raises(ValueError, match="10 frame sequences 4 at a time"):
        tm.group_frames(torch.zeros(10, 5, 2), group=4)
    with pytest.raises(ValueError, match="T=3 .* clips of 2"):
        tm.group_frames(torch.zeros(6, 5, 2), group=2, frames=3)  # 6 = 2 videos x 3 frames
    with pytest.raises(ValueError, match="prefix must be between 0 and the 5"):
        tm.group_frames(torch.zeros(4, 5, 2), group=2, prefix=6)
    with pytest.raises(ValueError, match="11 tokens is not 2 frames"):
        tm.ungroup_frames(torch.zeros(1, 11, 2), group=2)
    with pytest.raises(ValueError, match=r"\(B, N, C\), got \(5, 4\)"):
        tm.bipartite_soft_matching(torch.zeros(5, 4), 1)
    with pytest.raises(ValueError, match="got -1"):
        tm.bipartite_soft_matching(torch.zeros(1, 5, 4), -1)
    with pytest.raises(ValueError, match="the 5 tokens, got 6"):
        tm.bipartite_soft_matching(torch.zeros(1, 5, 4), 1, protected=6)
