"""The bound benchmarks' networks and margin specs in PyTorch, shared by bounds_autolirpa.py and crown_torch.py.

Same shapes as benchmarks/Engine.Benchmarks/BoundBenchNets.cs (MLP 784-256-256-10; CNN 1x28x28: conv 8 k4 s2 p1,
ReLU, conv 16 k4 s2 p1, ReLU, fc 100, ReLU, fc 10). Imports torch: import it only where torch is available.
"""
import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


def margins(labels, classes=10):
    """C [batch, classes - 1, classes]: row r of example b is y_label - y_j for the r-th j != label (j increasing)."""
    c = torch.zeros(len(labels), classes - 1, classes)
    for b, y in enumerate(labels):
        others = [j for j in range(classes) if j != y]
        for r, j in enumerate(others):
            c[b, r, y] = 1.0
            c[b, r, j] = -1.0
    return c
