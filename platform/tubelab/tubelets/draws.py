"""Random draws for tubelet parameters.

Every draw goes through one torch.Generator (or the global RNG when none is given) on the
generator's device, so a seed fixes the whole overlay. Parameters are small (B x N x T), so they
are drawn where the generator lives and moved to the clips' device afterwards.
"""

import torch


def device_of(generator):
    return generator.device if generator is not None else torch.device("cpu")


def uniform(generator, shape, low, high):
    """U(low, high) float32 of the given shape; low/high may be tensors that broadcast to it."""
    u = torch.rand(shape, generator=generator, device=device_of(generator))
    return low + (high - low) * u


def choice(generator, shape, probs):
    """Index drawn from the categorical `probs` (a list), one per element of `shape`."""
    edges = torch.tensor(probs, dtype=torch.float32, device=device_of(generator)).cumsum(0)[:-1]
    u = torch.rand(shape, generator=generator, device=device_of(generator))
    return (u.unsqueeze(-1) >= edges).sum(-1)


def pick(generator, shape, values):
    """A value drawn uniformly from `values` (a list of numbers), one per element of `shape`."""
    table = torch.tensor(values, dtype=torch.float32, device=device_of(generator))
    idx = torch.randint(len(values), shape, generator=generator, device=device_of(generator))
    return table[idx]
