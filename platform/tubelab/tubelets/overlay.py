"""Paste tubelets into both clips of each pair: out = frame * (1 - alpha) + patch * alpha.

Batched over clips, frames and pixels; the work scales with the patch area, not the frame area.
1. Atlas: for every tubelet, clip A's source frame plus the mask as a 4th channel (alpha of the
   source box, patches.mask_image), all stacked vertically in one image.
2. Runs: the transformed patch box is a parallelogram (bounds enlarged, never cropped), so on each
   pixel row of a frame it covers one run of pixels, found in closed form (scanline rasterisation):
   the pixels whose centre maps to patch coordinates |u| <= 1, u = diag(2 / size) M^-1 (x - center),
   M = rotation @ shear.
3. Sample: the runs of all clips and frames become one flat list of pixels; each reads colour and
   mask from the atlas at its source position (affine in x along a row), in one grid_sample.
4. Blend clip A and clip B with the same colour and alpha (mask times the frame's opacity) into
   copies of the inputs: gather, mix and scatter back each colour plane at the pixels' offsets.
Python loops run only over the tubelet slots (pasted one after the other, largest tubelet first, so
overlaps compose in order) and over the 2 x 3 colour planes of the output clips.
"""

import torch
import torch.nn.functional as F

from .patches import mask_image
from .transforms import patch_matrix


def paste(a, b, p):
    """New clips (a', b') with the tubelets of params `p` pasted; a, b (B, C, T, H, W)."""
    B, C, T, H, W = a.shape
    N = p["center"].shape[1]
    dev = a.device
    outs = (a.clone(memory_format=torch.contiguous_format), b.clone(memory_format=torch.contiguous_format))

    # Atlas entries are (H + 2) rows: a replicated row above and below keeps bilinear reads inside.
    clip = torch.arange(B, device=dev).unsqueeze(1)
    atlas = torch.empty((C + 1, B * N, H + 2, W), device=dev)
    atlas[:C, :, 1:-1] = a.transpose(1, 2)[clip, p["source_frame"]].view(B * N, C, H, W).transpose(0, 1)
    atlas[C, :, 1:-1] = mask_image(p["source_center"], p["source_size"], p["mask"], p["edge"], H, W).view(-1, H, W)
    atlas[:, :, 0], atlas[:, :, -1] = atlas[:, :, 1], atlas[:, :, -2]
    atlas = atlas.view(1, C + 1, B * N * (H + 2), W)

    # Per row (B, N, T, H): the run of covered pixels, and the affine map from pixel x to grid_sample
    # coordinates in the atlas (slope * x + intercept), plus the frame's opacity.
    G = (2 / p["size"]).unsqueeze(-1) * torch.linalg.inv(patch_matrix(p["angle"], p["shear"]))  # u = G (x - c)
    center = p["center"]
    y = torch.arange(H, device=dev) + 0.5  # pixel row centres
    first, count = runs(G, center, p["active"], y, W)
    size, src = p["source_size"][:, :, None, None], p["source_center"][:, :, None, None]  # (B, N, 1, 1, 2)
    slope = G[..., 0].unsqueeze(-2) * size / 2  # (B, N, T, 1, 2)
    intercept = src + size / 2 * (G[..., 1].unsqueeze(-2) * (y - center[..., 1:]).unsqueeze(-1)
                                  + G[..., 0].unsqueeze(-2) * (0.5 - center[..., :1]).unsqueeze(-1))
    entry = (torch.arange(B * N, device=dev).view(B, N, 1, 1) * (H + 2) + 1.0)  # first atlas row, + 1 pad row
    intercept = intercept + torch.stack([torch.zeros_like(entry), entry], -1)
    scale = torch.tensor([2.0 / W, 2.0 / (B * N * (H + 2))], device=dev)
    table = torch.cat([slope.expand(B, N, T, H, 2) * scale, intercept * scale - 1,
                       p["opacity"][..., None, None].expand(B, N, T, H, 1)], -1)
    table = table.permute(1, 4, 0, 2, 3).reshape(N, 5, B * T * H)  # per slot: 5 rows of per-row constants
    first, count = first.transpose(0, 1).reshape(N, -1), count.transpose(0, 1).reshape(N, -1)
    row_offset = ((clip * (C * T * H * W) + torch.arange(T, device=dev) * (H * W)).unsqueeze(-1)
                  + torch.arange(H, device=dev) * W).view(-1)  # offset of each row in a clip's channel 0

    for n in range(N):
        # Expand runs to pixels: pixel i of the list lies on row `row[i]` at x = first + i - run start.
        total = int(count[n].sum())
        row = torch.repeat_interleave(count[n], output_size=total)
        x = torch.arange(total, device=dev) + (first[n] - (count[n].cumsum(0) - count[n])).index_select(0, row)
        v = table[n].index_select(1, row)  # (5, P)
        grid = torch.empty(1, 1, total, 2, device=dev)
        xf = x.float()
        torch.addcmul(v[2], v[0], xf, out=grid[0, 0, :, 0])
        torch.addcmul(v[3], v[1], xf, out=grid[0, 0, :, 1])
        rgba = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="border", align_corners=False)
        rgba = rgba.view(C + 1, total)
        blend(outs, x + row_offset.index_select(0, row), rgba[:C], rgba[C] * v[4])
    return outs


def runs(G, center, active, y, width):
    """First pixel and length (..., H) of the run of pixels each row has inside the patch box.

    On a row, u_i = G[i, 0] * (x - cx) + G[i, 1] * (y - cy) is linear in x, so |u_i| <= 1 is an
    interval of x; the run is the intersection of both intervals with the frame's pixel centres.
    """
    g = G[..., 0].unsqueeze(-1)  # (..., 2, 1): d u_i / dx
    g = torch.where(g.abs() < 1e-9, torch.full_like(g, 1e-9), g)  # u_i constant on the row: all or none
    offset = G[..., 1].unsqueeze(-1) * (y - center[..., 1:]).unsqueeze(-2)  # (..., 2, H)
    e0, e1 = (-1 - offset) / g, (1 - offset) / g
    low = torch.minimum(e0, e1).amax(-2) + center[..., :1]  # (..., H) in x
    high = torch.maximum(e0, e1).amin(-2) + center[..., :1]
    first = torch.ceil(low - 0.5).clamp(0, width).long()  # pixel x has its centre at x + 0.5
    last = torch.floor(high - 0.5).clamp(-1, width - 1).long()
    return first, (last - first + 1).clamp(min=0) * active.unsqueeze(-1)


def blend(outs, pixel, rgb, alpha):
    """Each clip (B, C, T, H, W) of outs <- clip * (1 - alpha) + rgb * alpha at channel-0 offsets `pixel`."""
    B, C, T, H, W = outs[0].shape
    patch = rgb * alpha
    if not outs[0].dtype.is_floating_point:
        patch += 0.5  # truncation to uint8 then rounds
    keep = 1 - alpha
    values = torch.empty(len(pixel), dtype=outs[0].dtype, device=pixel.device)
    mixed = torch.empty(len(pixel), device=pixel.device)
    for out in outs:
        # The C planes of a clip as rows of one overlapping strided view: one gather/scatter each.
        planes = out.view(-1).as_strided((C, (B - 1) * C * T * H * W + T * H * W), (T * H * W, 1))
        for plane, colour in zip(planes, patch):
            torch.index_select(plane, 0, pixel, out=values)
            torch.addcmul(colour, mixed.copy_(values), keep, out=mixed)
            plane.index_copy_(0, pixel, values.copy_(mixed))
