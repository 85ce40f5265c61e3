"""Heads that sit on a backbone's pooled features."""

import torch.nn as nn
import torch.nn.functional as F


class ProjectionHead(nn.Module):
    """MoCo-v2 projection: Linear -> ReLU -> Linear, L2-normalised so that the dot products in the
    InfoNCE loss are cosine similarities (the paper uses 512 -> 512 -> 128)."""

    def __init__(self, in_dim, hidden_dim=512, out_dim=128):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x):
        return F.normalize(self.fc2(F.relu(self.fc1(x))), dim=1)
