"""A fixture that runs a test on one intra-op thread (imported by the conftest.py of test
folders with many small tensor ops): on the shared two-core test machine, two threads per
process mostly wait for each other — a 250-step sampler test takes 0.2 s on one thread and
4 s on two."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
