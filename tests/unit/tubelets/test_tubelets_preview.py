"""save_preview writes a readable PNG contact sheet and an animated GIF."""

import torch
from PIL import Image

from tubelab.tubelets import apply_tubelets, load_tubelet_config
from tubelab.tubelets.preview import save_preview


def test_preview_writes_png_and_gif(tmp_path):
    a = torch.randint(0, 256, (5, 3, 8, 48, 64), dtype=torch.uint8)
    out = apply_tubelets(a, a.flip(0), load_tubelet_config(), torch.Generator().manual_seed(0))
    paths = save_preview(out.a, out.b, tmp_path / "sheet.png", tmp_path / "pairs.gif", max_pairs=3, frames=4)
    assert paths == [str(tmp_path / "sheet.png"), str(tmp_path / "pairs.gif")]
    with Image.open(paths[0]) as png:
        assert png.format == "PNG" and png.width > 4 * 64 and png.height > 6 * 48  # 3 pairs x (A, B) rows
    with Image.open(paths[1]) as gif:
        assert gif.format == "GIF" and gif.n_frames == 8 and gif.size == (2 * 64 + 2, 3 * 48 + 4)


def test_preview_accepts_float_clips_in_unit_range(tmp_path):
    a = torch.rand(2, 3, 4, 32, 32)
    paths = save_preview(a, a, tmp_path / "unit.png", frames=8)
    assert paths == [str(tmp_path / "unit.png")]
    with Image.open(paths[0]) as png:
        assert png.width > 4 * 32  # frames capped by the clip length
