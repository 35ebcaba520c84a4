"""Shared set-up of the model tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # Other work shares the two cores; these models are tiny.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
