import torch

from tubelab.models import ProjectionHead


def test_projection_head_is_l2_normalised_mlp():
    head = ProjectionHead(512)
    assert [tuple(p.shape) for p in head.parameters()] == [(512, 512), (512,), (128, 512), (128,)]
    x = torch.randn(4, 512, requires_grad=True)
    z = head(x)
    assert z.shape == (4, 128)
    assert torch.allclose(z.norm(dim=1), torch.ones(4), atol=1e-5)
    z[:, 0].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_projection_head_dims():
    assert ProjectionHead(128, hidden_dim=64, out_dim=32)(torch.randn(3, 128)).shape == (3, 32)
