"""Paste tubelets into both clips of each pair: out = frame * (1 - alpha) + patch * alpha.

Batched over clips, frames and pixels; the work scales with the patch area, not the frame area.
1. Atlas: for every tubelet, clip A's source frame plus its mask as a 4th channel (the values of
   patches.mask_image, computed separably), stacked vertically in one float image.
2. Runs: the transformed patch box is a parallelogram (bounds enlarged, never cropped), so on each
   pixel row of a frame it covers one run of pixels, found in closed form (scanline rasterisation):
   the pixels whose centre maps to patch coordinates |u| <= 1, u = diag(2 / size) M^-1 (x - center),
   M = rotation @ shear.
3. Words: each run is widened to whole 8-byte storage words (k = 8 pixels of a uint8 clip, 2 of a
   float32 one; fewer when k does not divide the frame width), so the clips are gathered and
   scattered a word, not a pixel, at a time; the widened pixels get alpha 0 and come back unchanged.
4. Sample: all words of a tubelet slot form one flat list of pixels. Their atlas positions come from
   one small matrix product (lane j of a word at base + j * step), colour and mask from one
   grid_sample, and alpha = mask * the frame's opacity, 0 on the widening (one embedding_bag lookup
   of a lane-mask table, weighted by the opacity).
5. Blend: patch * alpha and 1 - alpha are computed once and shared by clip A and clip B; both clips'
   words are gathered, mixed with one addcmul in float32, rounded once (uint8) and scattered back.
The clips are copied and pasted a few at a time (about CHUNK_WORDS words of a slot), so the
gathered words and the temporaries of steps 4-5 are still in cache. Python loops run only over the
tubelet slots (pasted one after the other, largest tubelet first, so overlaps compose in order),
those groups of clips and the two clips of the gather and scatter.

On CPU the scratch tensors live in a per-thread workspace that is reused across calls (about 20 MB at
32 x 16 x 112 x 112): fresh multi-MB tensors cost a page fault per 4 KiB on first touch, a large
share of the engine's time on a VM. release_workspace() frees it.
"""

import math
import threading

import torch
import torch.nn.functional as F

WORD_BYTES = 8
CHUNK_WORDS = 16384  # words per sample-and-blend step (128 K pixels of uint8 clips)
_WORD_DTYPES = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_local = threading.local()


def release_workspace():
    """Free this thread's scratch buffers (they are regrown on the next CPU call)."""
    _local.buffers = {}


def _scratch(name, shape, dtype, device):
    """Uninitialised tensor; on CPU a view of this thread's buffer `name`, reused across calls."""
    if device.type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    buffers = _local.__dict__.setdefault("buffers", {})
    nbytes = math.prod(shape) * dtype.itemsize
    buf = buffers.get(name)
    if buf is None or buf.numel() < nbytes:
        buf = buffers[name] = torch.empty(nbytes + nbytes // 4 + 64, dtype=torch.uint8)
    return buf[:nbytes].view(dtype).view(shape)


def paste(a, b, p):
    """New clips (a', b') with the tubelets of params `p` pasted; a, b (B, C, T, H, W)."""
    B, C, T, H, W = a.shape
    N = p["center"].shape[1]
    dev, dtype, f32 = a.device, a.dtype, torch.float32
    outs = (torch.empty_like(a, memory_format=torch.contiguous_format),
            torch.empty_like(b, memory_format=torch.contiguous_format))
    if a.numel() == 0:
        return outs

    # Words: k pixels of one row per storage word; k (a power of 2) divides W, so a word never spans
    # two rows and the words of one tubelet slot are distinct.
    k = math.gcd(W, max(WORD_BYTES // a.element_size(), 1))
    word = _WORD_DTYPES.get(k * a.element_size())
    if word is None:
        k, word = 1, dtype
    log_k = k.bit_length() - 1
    words = [out.view(-1).view(word) for out in outs]  # (B * C * T * H * W / k,) each
    plane = T * H * W // k  # words from one colour plane to the next
    atlas = _atlas(a, p)

    # Per frame (B, N, T): u = G (x - center) maps frame pixels to patch coordinates, and the atlas
    # position of pixel centre (x, y) is slope * x + rise * y + offset, in grid_sample's [-1, 1].
    G = _inverse_patch_matrix(p["angle"], p["shear"]) * (2 / p["size"]).unsqueeze(-1)
    center, half = p["center"], p["source_size"].unsqueeze(2) / 2
    y = torch.arange(H, device=dev) + 0.5  # pixel row centres
    first, count = runs(G, center, p["active"], y, W)  # (B, N, T, H)
    slope, rise = G[..., 0] * half, G[..., 1] * half  # (B, N, T, 2)
    entry = (torch.arange(B * N, device=dev).view(B, N, 1) * (H + 2) + 1.0).expand(B, N, T)  # atlas row 0
    offset = p["source_center"].unsqueeze(2) + torch.stack([torch.zeros_like(entry), entry], -1)
    offset = offset - slope * center[..., :1] - rise * center[..., 1:]
    scale = torch.tensor([2.0 / W, 2.0 / (B * N * (H + 2))], device=dev)
    frame = torch.cat([slope * scale, rise * scale, offset * scale - 1, p["opacity"].unsqueeze(-1)], -1)
    frame = frame.permute(1, 3, 0, 2).reshape(N, 7, B * T)  # per slot: 7 constants per clip and frame

    # Per row (N, B * T * H): the run widened to words, from word wfirst of the row, nwords long.
    # Word counts and offsets fit int32 unless a clip tensor has 2^31 words.
    ids = torch.int32 if B * C * plane < 2**31 else torch.long
    first, count = first.transpose(0, 1).reshape(N, -1).to(ids), count.transpose(0, 1).reshape(N, -1).to(ids)
    last = first + count - 1
    wfirst = first >> log_k
    nwords = torch.where(count > 0, (last >> log_k) - wfirst + 1, 0)
    ends = nwords.view(N, B, T * H).sum(-1, dtype=torch.long).cumsum(-1)  # (N, B): words to each clip's end
    # Word i of the slot lies on row r = row[i]: its index in channel 0 of its clip is i + start[r], its
    # first pixel x0 = i * k + x[r] and the run covers its lanes first[r] - x0 .. last[r] - x0 (start
    # and x subtract the words of the slot before row r).
    before = (nwords.cumsum(-1, dtype=ids) - nwords)
    x = (wfirst - before) << log_k
    row_word = ((torch.arange(B, device=dev).view(B, 1) * (C * plane) + torch.arange(T, device=dev) * (H * W // k))
                .unsqueeze(-1) + torch.arange(H, device=dev) * (W // k)).view(-1).to(ids)  # channel 0, x = 0
    bt = torch.arange(B * T, device=dev, dtype=ids).repeat_interleave(H).expand(N, -1)
    y = torch.arange(H, device=dev, dtype=ids).repeat(B * T).expand(N, -1)
    rows = torch.stack([wfirst - before + row_word, x, first - x, last - x, bt, y], 1)  # (N, 6, R)
    ends = ends.tolist()  # the one host sync

    slots = []
    for n in range(N):
        total = ends[n][-1]
        if total == 0:
            slots.append(None)
            continue
        row = torch.repeat_interleave(nwords[n], output_size=total)  # the row of each word
        start, x0, lo, hi, frame_of, row_y = (column.index_select(0, row) for column in rows[n])
        at = torch.arange(total, device=dev, dtype=ids)
        start += at
        at <<= log_k
        x0 += at
        lo -= at
        hi -= at
        lanes = lo.clamp_(0, k).mul_(k + 1).add_(hi.clamp_(-1, k - 1)).add_(1)  # a row of the lane-mask table
        v = [column.index_select(0, frame_of) for column in frame[n]]  # 7 x (words,)
        # Atlas position of lane j of a word: base + j * slope, base = offset + slope x0' + rise y'.
        coef = torch.empty((4, total), device=dev)
        x0, row_y = x0.to(f32).add_(0.5), row_y.to(f32).add_(0.5)
        for i in range(2):
            torch.addcmul(v[4 + i], v[i], x0, out=coef[i]).addcmul_(v[2 + i], row_y)
            coef[2 + i] = v[i]
        slots.append((coef, lanes, v[6], start.long()))  # index_copy_ takes int64

    # A few clips at a time (about CHUNK_WORDS words of a slot): copy the inputs, then paste each slot's
    # words into the copies while they are still in cache. Other devices take the batch in one go.
    chunk = CHUNK_WORDS if dev.type == "cpu" else math.inf
    shared = _Shared(atlas, words, dtype, word, k, C, plane)
    done, c0 = [0] * N, 0
    for c1 in range(1, B + 1):
        if c1 < B and max(ends[n][c1 - 1] - done[n] for n in range(N)) < chunk:
            continue
        outs[0][c0:c1] = a[c0:c1]
        outs[1][c0:c1] = b[c0:c1]
        for n, slot in enumerate(slots):
            s, e = done[n], ends[n][c1 - 1]
            if e > s:
                coef, lanes, opacity, start = slot
                shared.paste_words(coef[:, s:e], lanes[s:e], opacity[s:e], start[s:e])
            done[n] = e
        c0 = c1
    return outs


class _Shared:
    """What every chunk of every slot of one paste call uses."""

    def __init__(self, atlas, words, dtype, word, k, C, plane):
        dev = atlas.device
        self.atlas, self.words, self.dtype, self.word, self.k, self.C = atlas, words, dtype, word, k, C
        # grid (words, k * 2) = coef^T (words, 4) @ spread: lane j gets base + j * slope, for x and y.
        self.spread = torch.zeros((4, k, 2), device=dev)
        self.spread[0, :, 0] = self.spread[1, :, 1] = 1
        self.spread[2, :, 0] = self.spread[3, :, 1] = torch.arange(k, device=dev)
        self.spread = self.spread.view(4, 2 * k)
        # Row lo * (k + 1) + hi + 1: 1 on lanes lo..hi, 0 elsewhere.
        j = torch.arange(k, device=dev)
        bounds = torch.arange(k + 1, device=dev)
        self.lane_mask = ((j >= bounds.view(-1, 1, 1)) & (j <= bounds.view(1, -1, 1) - 1)).view(-1, k).float()
        self.channel = torch.arange(C, device=dev).unsqueeze(1) * plane
        self.one = torch.ones((), device=dev)
        self.rounding = torch.full((), 0.0 if dtype.is_floating_point else 0.5, device=dev)  # + 0.5, truncate

    def paste_words(self, coef, lanes, opacity, start):
        """Sample and blend words of k pixels (lane j at coef[:2] + j * coef[2:] in the atlas) into both clips."""
        dev, f32, k, C = self.atlas.device, torch.float32, self.k, self.C
        count = len(start)
        P = count * k
        grid = torch.mm(coef.t(), self.spread, out=_scratch("grid", (count, 2 * k), f32, dev))
        rgba = F.grid_sample(self.atlas, grid.view(1, 1, P, 2), mode="bilinear", padding_mode="border",
                             align_corners=False).view(C + 1, P)
        # alpha = mask * opacity on the run's pixels, 0 on the widening.
        weight = F.embedding_bag(lanes.view(-1, 1), self.lane_mask, per_sample_weights=opacity.view(-1, 1),
                                 mode="sum")
        alpha = rgba[C].mul_(weight.view(P))
        keep = torch.sub(self.one, alpha, out=_scratch("keep", (P,), f32, dev))
        patch = torch.addcmul(self.rounding, rgba[:C], alpha, out=rgba[:C])
        # Both clips: gather their words, mix in float32, round once, scatter back.
        index = torch.add(self.channel, start, out=_scratch("index", (C, count), start.dtype, dev)).view(-1)
        gathered = _scratch("gathered", (2, C * count), self.word, dev)
        for i in range(2):
            torch.index_select(self.words[i], 0, index, out=gathered[i])
        background = gathered.view(self.dtype).view(2, C, P)
        mixed = background if self.dtype == f32 else _scratch("mixed", (2, C, P), f32, dev).copy_(background)
        torch.addcmul(patch, mixed, keep, out=mixed)
        if mixed is not background:
            background.copy_(mixed)
        for i in range(2):
            self.words[i].index_copy_(0, index, gathered[i])


def _atlas(a, p):
    """(1, C + 1, B * N * (H + 2), W) float32: per tubelet its source frame of a and its mask, 1 pad row
    above and below (edge rows replicated, so bilinear reads stay inside the entry)."""
    B, C, T, H, W = a.shape
    N = p["source_frame"].shape[1]
    dev = a.device
    atlas = _scratch("atlas", (C + 1, B * N, H + 2, W), torch.float32, dev)
    if a.is_contiguous():  # rows (c, b, n) of a viewed as (B * C * T, H * W), in one gather
        frames = ((torch.arange(B, device=dev).view(1, B, 1) * C + torch.arange(C, device=dev).view(C, 1, 1)) * T
                  + p["source_frame"]).view(-1)
        source = torch.index_select(a.view(B * C * T, H * W), 0, frames,
                                    out=_scratch("source", (C * B * N, H * W), a.dtype, dev)).view(C, B * N, H, W)
    else:
        source = a.transpose(1, 2)[torch.arange(B, device=dev).unsqueeze(1), p["source_frame"]]
        source = source.view(B * N, C, H, W).transpose(0, 1)
    atlas[:C, :, 1:-1] = source
    _mask_image(atlas[C, :, 1:-1], p["source_center"].view(-1, 2), p["source_size"].view(-1, 2),
                p["mask"].view(-1), p["edge"].view(-1))
    atlas[:, :, 0], atlas[:, :, -1] = atlas[:, :, 1], atlas[:, :, -2]
    return atlas.view(1, C + 1, B * N * (H + 2), W)


def _mask_image(out, center, size, kind, edge):
    """patches.mask_image into out (M, H, W), separably: every mask is a function of |ux| and |uy|.

    alpha = clamp((1 - d) / (2 edge), 0, 1) with d = max(|ux|, |uy|) (rectangle: the minimum of the
    two 1-D ramps), |ux| + |uy| (rhombus: their difference) or sqrt(ux^2 + uy^2) (ellipse).
    """
    M, H, W = out.shape
    dev = out.device
    s = (0.5 / edge).unsqueeze(1)
    ax = ((torch.arange(W, device=dev) + 0.5) - center[:, :1]).abs_() / (size[:, :1] / 2)  # (M, W)
    ay = ((torch.arange(H, device=dev) + 0.5) - center[:, 1:]).abs_() / (size[:, 1:] / 2)  # (M, H)
    fx, fy = (1 - ax) * s, (1 - ay) * s
    torch.minimum(fx.unsqueeze(1), fy.unsqueeze(2), out=out)  # rectangle, for every mask first
    for shape in (1, 2):
        pick = (kind == shape).nonzero().view(-1)
        if len(pick) == 0:
            continue
        if shape == 1:  # ellipse
            d = torch.add(ax[pick].square().unsqueeze(1), ay[pick].square().unsqueeze(2)).sqrt_()
            alpha = torch.addcmul(s[pick].unsqueeze(2), d, s[pick].unsqueeze(2), value=-1)
        else:  # rhombus: (1 - |ux| - |uy|) s = fx - |uy| s
            alpha = fx[pick].unsqueeze(1) - (ay * s)[pick].unsqueeze(2)
        out.index_copy_(0, pick, alpha)
    out.clamp_(0, 1)


def _inverse_patch_matrix(angle, shear):
    """transforms.patch_matrix(angle, shear)^-1 (*, 2, 2) in closed form: shear^-1 @ rotation^T.

    The shear [[1, sx], [sy, sx sy + 1]] has determinant 1; its inverse is [[sx sy + 1, -sx], [-sy, 1]].
    """
    rad = torch.deg2rad(angle)
    cos, sin = rad.cos(), rad.sin()
    sx, sy = shear[..., 0], shear[..., 1]
    a, b = sx * sy + 1, -sx
    # [[a, b], [-sy, 1]] @ [[cos, sin], [-sin, cos]]
    return torch.stack([torch.stack([a * cos - b * sin, a * sin + b * cos], -1),
                        torch.stack([-sy * cos - sin, -sy * sin + cos], -1)], -2)


def runs(G, center, active, y, width):
    """First pixel and length (..., H) of the run of pixels each row has inside the patch box.

    On a row, u_i = G[i, 0] * (x - cx) + G[i, 1] * (y - cy) is linear in x, so |u_i| <= 1 is the
    interval x - cx = -(G[i, 1] / G[i, 0]) (y - cy) +- 1 / |G[i, 0]|; the run is the intersection of
    both intervals with the frame's pixel centres (pixel x has its centre at x + 0.5).
    """
    g = G[..., 0]  # (..., 2): d u_i / dx
    g = torch.where(g.abs() < 1e-9, torch.full_like(g, 1e-9), g)  # u_i constant on the row: all or none
    slope, half = -G[..., 1] / g, 1 / g.abs()
    dy = y - center[..., 1:]  # (..., H)
    base = center[..., :1] - 0.5
    low = torch.maximum(torch.addcmul((base - half[..., :1]), slope[..., :1], dy),
                        torch.addcmul((base - half[..., 1:]), slope[..., 1:], dy))
    high = torch.minimum(torch.addcmul((base + half[..., :1]), slope[..., :1], dy),
                         torch.addcmul((base + half[..., 1:]), slope[..., 1:], dy))
    first = low.ceil_().clamp_(0, width).long()
    last = high.floor_().clamp_(-1, width - 1).long()
    return first, (last - first + 1).clamp_(min=0) * active.unsqueeze(-1)
