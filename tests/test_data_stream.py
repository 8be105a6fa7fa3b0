"""kdzoo/data_stream.py: a sample's position (hence its augmentation) is the one it has in a
1-process run, whatever the number of processes, and the same key loads the same sample whatever
the global random state."""
import torch
from mmengine.dataset import sampler as mm_sampler
from torch.utils.data import Dataset

from kdzoo.data_stream import SeededDataset, StreamSampler


class Noisy(Dataset):
    """Each item draws from the global torch stream, as a random augmentation does."""

    def __len__(self):
        return 10

    def __getitem__(self, index):
        return index, torch.rand(()).item()


def keys(monkeypatch, rank, world, epoch=0):
    info = lambda: (rank, world)  # noqa: E731
    monkeypatch.setattr(mm_sampler, 'get_dist_info', info)
    monkeypatch.setattr('kdzoo.data_stream.get_dist_info', info)
    sampler = StreamSampler(Noisy(), dict(type='DefaultSampler', shuffle=True), seed=3)
    sampler.set_epoch(epoch)
    return list(sampler)


def test_positions_are_those_of_a_one_process_run(monkeypatch):
    for epoch in (0, 1):
        alone = keys(monkeypatch, 0, 1, epoch)
        ranks = keys(monkeypatch, 0, 2, epoch) + keys(monkeypatch, 1, 2, epoch)
        assert sorted(ranks, key=lambda k: k[1]) == alone
        assert [p for _, p in alone] == list(range(10 * epoch, 10 * epoch + 10))


def test_a_key_loads_the_same_sample_whatever_the_global_state():
    dataset = SeededDataset(Noisy(), seed=5)
    torch.manual_seed(0)
    first = dataset[(3, 17)]
    torch.rand(100)
    assert dataset[(3, 17)] == first and dataset[(3, 18)] != first
    state = torch.get_rng_state()
    dataset[(4, 2)]
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left where it was
