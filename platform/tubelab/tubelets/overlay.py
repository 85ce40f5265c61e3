"""Paste tubelets into both clips of each pair: out = frame * (1 - alpha) + patch * alpha.

The patch of a tubelet is cut from clip A at its source frame (params "source_frame", box
"source_center" / "source_size"); its mask (patches.mask_image: rectangle, ellipse or rhombus,
hard or soft edge) travels with it as a 4th channel, so colour and mask are warped together.
On frame t the patch box has centre c, size s and the linear map M = rotation @ shear
(transforms.patch_matrix), so a pixel centre x of the frame maps to the patch coordinates

    u = diag(2 / s) M^-1 (x - c),   |u| <= 1 inside the box,

and reads the source frame, bilinearly, at source_center + u * source_size / 2 (one warp, no
resize-then-rotate). alpha = mask * opacity inside the box on the tubelet's active frames, 0
elsewhere. The same patch and alpha are blended into clip A and clip B, in float32, rounded once
for integer clips.

Tubelet slots are pasted one after the other, largest first (the order of params), so a smaller
tubelet lands on top of a larger one. Within a slot everything is batched over clips and frames
in flat lists: the frame rows the box reaches, then the pixels of each row inside the box (u is
linear along a row, so that run has closed-form ends). The work follows the patch area, not the
frame area, and runs on the clips' device.
"""

from types import SimpleNamespace

import torch

from .patches import mask_image
from .transforms import patch_matrix


def paste(a, b, params):
    """New clips (a', b') with the tubelets of `params` pasted; a, b (B, C, T, H, W) uint8 or float.

    The outputs are contiguous, with the dtype and device of the inputs; the inputs are not changed.
    """
    out_a = a.clone(memory_format=torch.contiguous_format)
    out_b = b.clone(memory_format=torch.contiguous_format)
    if a.numel() == 0:
        return out_a, out_b
    B, C, T, H, W = a.shape
    patches = source_patches(a, params)  # (C + 1, B, N, H, W)
    channel = torch.arange(C, device=a.device).unsqueeze(1) * (T * H * W)
    for slot in range(params["center"].shape[1]):  # largest tubelet first
        pixels = covered_pixels({key: value[:, slot] for key, value in params.items()}, a.shape)
        rgba = bilinear(patches[:, :, slot], pixels["clip"], pixels["source_x"], pixels["source_y"])
        alpha = rgba[C] * pixels["opacity"]
        # Shared by both clips: out = frame * keep + patch_term at each colour of each covered pixel.
        keep, patch_term = 1 - alpha, rgba[:C] * alpha
        index = pixels["index"] + channel  # (C, P)
        for out in (out_a, out_b):
            blend(out.view(-1), index, keep, patch_term)
    return out_a, out_b


def blend(flat_clip, index, keep, patch_term):
    """flat_clip[index] = flat_clip[index] * keep + patch_term (index, patch_term (C, P), keep (P,)), in
    float32, rounded once for integer clips."""
    frame = flat_clip.index_select(0, index.flatten()).view(index.shape).float()
    mixed = torch.addcmul(patch_term, frame, keep).flatten()
    if not flat_clip.dtype.is_floating_point:
        mixed = mixed.round_()
    flat_clip.index_copy_(0, index.flatten(), mixed.to(flat_clip.dtype))


def source_patches(a, params):
    """Clip A's source frame of every tubelet plus its mask as a 4th channel: (C + 1, B, N, H, W) float32."""
    B, C, T, H, W = a.shape
    clip = torch.arange(B, device=a.device).unsqueeze(1)
    frames = a.transpose(1, 2)[clip, params["source_frame"]].float()  # (B, N, C, H, W)
    mask = mask_image(params["source_center"], params["source_size"], params["mask"], params["edge"], H, W)
    return torch.cat([frames, mask.unsqueeze(2)], 2).permute(2, 0, 1, 3, 4)


def covered_pixels(geometry, clip_shape):
    """The pixels of one tubelet slot, over all clips and frames, whose centre lies inside the patch box.

    geometry: one slot of the params, center, size, shear (B, T, 2), angle, opacity, active (B, T),
    source_center, source_size (B, 2). Returns flat (P,) tensors: index (of the pixel in colour
    channel 0 of a contiguous clip), clip, opacity (its frame's), source_x, source_y (where it reads
    its clip's source frame, in pixels).
    """
    B, C, T, H, W = clip_shape
    dev = geometry["center"].device
    matrix = patch_matrix(geometry["angle"], geometry["shear"])  # (B, T, 2, 2): patch -> frame offsets
    to_patch = torch.linalg.inv(matrix) * (2 / geometry["size"]).unsqueeze(-1)  # frame offsets -> u
    center_x, center_y = geometry["center"].unbind(-1)

    # Rows: every pixel row of every frame that the transformed box reaches (none where inactive).
    half_height = (matrix[..., 1, :].abs() * geometry["size"]).sum(-1) / 2
    top = torch.floor(center_y - half_height).clamp(0, H)
    bottom = torch.ceil(center_y + half_height).clamp(0, H)
    rows = flat_list(((bottom - top) * geometry["active"]).long().flatten(), top.long().flatten())

    def at_row(per_frame):  # (B, T) -> (rows,)
        return per_frame.flatten().index_select(0, rows.item)

    y = rows.value.float()
    clip = at_row(torch.arange(B, device=dev).unsqueeze(1).expand(B, T))
    # Along a row, patch coordinates are linear in the pixel column x: u_i = start_i + step_i * x.
    dx, dy = 0.5 - at_row(center_x), y + 0.5 - at_row(center_y)  # pixel centre of column 0 - box centre
    start = [at_row(to_patch[..., i, 0]) * dx + at_row(to_patch[..., i, 1]) * dy for i in (0, 1)]
    step = [at_row(to_patch[..., i, 0]) for i in (0, 1)]
    # The columns with |u_0| <= 1 and |u_1| <= 1 inside the frame: an intersection of intervals.
    first, last = torch.zeros_like(y), torch.full_like(y, W - 1.0)
    for u_start, u_step in zip(start, step):
        u_step = torch.where(u_step.abs() < 1e-9, 1e-9, u_step)  # u constant along the row: all or nothing
        ends = torch.stack([(-1 - u_start) / u_step, (1 - u_start) / u_step])
        first, last = torch.maximum(first, ends.amin(0)), torch.minimum(last, ends.amax(0))
    first, last = first.ceil(), last.floor()

    # Pixels: the covered columns of every row; their source positions are linear along the row too.
    pixels = flat_list((last - first + 1).clamp(min=0).long(), first.long())

    def at_pixel(per_row):  # (rows,) -> (pixels,)
        return per_row.index_select(0, pixels.item)

    x = pixels.value
    source_center, half_size = geometry["source_center"][clip], geometry["source_size"][clip] / 2
    source = [torch.addcmul(at_pixel(source_center[:, i] + half_size[:, i] * start[i]),
                            at_pixel(half_size[:, i] * step[i]), x.float()) for i in (0, 1)]
    frame_start = (clip * (C * T) + at_row(torch.arange(T, device=dev).expand(B, T))) * (H * W)
    return dict(index=at_pixel(frame_start + rows.value * W) + x, clip=at_pixel(clip),
                opacity=at_pixel(at_row(geometry["opacity"])), source_x=source[0], source_y=source[1])


def flat_list(counts, starts):
    """The integers starts[i] .. starts[i] + counts[i] - 1 of every item i, concatenated: value, and item
    (the i of each value), each (sum(counts),)."""
    total = int(counts.sum())  # a host sync: the list's length
    item = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts, output_size=total)
    shift = starts - (counts.cumsum(0) - counts)  # value - list position, per item
    return SimpleNamespace(item=item, value=torch.arange(total, device=counts.device) + shift.index_select(0, item))


def bilinear(images, index, x, y):
    """images (K, M, H, W) read at continuous (x, y) of image `index` (P,): (K, P); pixel edges at integers,
    positions past the outer pixel centres read the edge pixels (as reference._bilinear).

    Four gathers rather than grid_sample on the images stacked into one: stacked, a position's float
    precision would depend on the image's place in the batch, so a pair's output on its batch.
    """
    K, M, H, W = images.shape
    x, y = (x - 0.5).clamp(0, W - 1), (y - 0.5).clamp(0, H - 1)  # pixel centres at integers
    left, top = x.floor().clamp(max=W - 2), y.floor().clamp(max=H - 2)
    fx, fy = x - left, y - top
    flat = images.reshape(K, M * H * W)
    corner = (index * H + top.long()) * W + left.long()
    top_left, top_right, bottom_left, bottom_right = (flat.index_select(1, corner + offset)
                                                      for offset in (0, 1, W, W + 1))
    upper = top_left + (top_right - top_left) * fx
    lower = bottom_left + (bottom_right - bottom_left) * fx
    return upper + (lower - upper) * fy
