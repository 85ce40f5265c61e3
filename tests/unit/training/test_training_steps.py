"""The plain training steps: batch in, loss out, parameters changed; on CUDA too where there is one."""

import pytest
import torch
from omegaconf import OmegaConf

from tubelab import config
from tubelab.models import r2plus1d_tiny
from tubelab.objectives.moco import MoCo
from tubelab.training import steps
from tubelab.tubelets import load_tubelet_config
from tubelab.tubelets.pairs import make_pair

JITTER = OmegaConf.create({"prob": 1.0, "brightness": 32, "contrast": 0.2, "contrast_mode": "multiply", "saturation": 0.1,
                           "hue_degrees": 24})
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_normalize_and_model_input():
    x = torch.full((1, 3, 1, 1, 1), 255, dtype=torch.uint8)
    expected = [(1 - m) / s for m, s in zip(steps.IMAGENET_MEAN, steps.IMAGENET_STD)]
    assert torch.allclose(steps.normalize(x).flatten(), torch.tensor(expected))
    clip = torch.zeros(2, 1, 8, 16, 16, 3, dtype=torch.uint8)
    assert steps.to_model_input(clip, torch.device("cpu")).shape == (2, 1, 3, 8, 16, 16)
    # BGR (SEVERE's Charades): each channel normalised with its own statistics, then the order reversed
    rgb = torch.tensor([10, 120, 250], dtype=torch.uint8).view(1, 3, 1, 1, 1)
    red, green, blue = [(v / 255 - m) / s for v, m, s in zip((10, 120, 250), steps.IMAGENET_MEAN, steps.IMAGENET_STD)]
    assert torch.allclose(steps.normalize(rgb, bgr=True).flatten(), torch.tensor([blue, green, red]))


def test_a_settings_input_normalisation_is_its_statistics_and_channel_order():
    """SEVERE's Charades (SlowFast's defaults): mean 0.45, std 0.225 on every channel, then BGR; the action
    recognition settings: ImageNet's statistics, RGB."""
    rgb = torch.tensor([10, 120, 250], dtype=torch.uint8).view(1, 3, 1, 1, 1)
    charades = steps.InputNorm.of(config.load("finetune", ["setting=charades"]).setting.clip)
    red, green, blue = [(v / 255 - 0.45) / 0.225 for v in (10, 120, 250)]
    assert torch.allclose(charades(rgb).flatten(), torch.tensor([blue, green, red]))
    ucf = steps.InputNorm.of(config.load("finetune", ["setting=ucf101"]).setting.clip)
    assert ucf == steps.InputNorm() and torch.equal(ucf(rgb), steps.normalize(rgb))


@pytest.mark.parametrize("device", DEVICES)
def test_pretrain_step_updates_the_query_encoder_key_encoder_and_queue(device):
    torch.manual_seed(0)
    moco = MoCo(r2plus1d_tiny(num_classes=1), dim=16, queue=64, momentum=0.9).to(device)
    opt = torch.optim.SGD([p for p in moco.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    clips = torch.randint(0, 256, (8, 1, 3, 4, 32, 32), dtype=torch.uint8, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    query, key, params = make_pair(clips, torch.arange(8, device=device), load_tubelet_config("default"), gen)
    assert params["center"].device.type == device
    q_before = moco.encoder_q.head.fc1.weight.detach().clone()
    k_before = moco.encoder_k.head.fc1.weight.detach().clone()
    for _ in range(3):
        loss, stats = steps.pretrain_step(moco, opt, query, key, jitter=JITTER, generator=gen, grad_clip=40.0)
    assert loss.device.type == device and torch.isfinite(loss) and 0 <= stats["contrast_acc"].item() <= 1
    assert not torch.equal(q_before, moco.encoder_q.head.fc1.weight)  # the optimiser stepped
    assert not torch.equal(k_before, moco.encoder_k.head.fc1.weight)  # the momentum update ran
    assert moco.queue_ptr.item() == 3 * 8  # each step enqueued its 8 keys


@pytest.mark.parametrize("device", DEVICES)
def test_finetune_step_fits_a_fixed_batch(device):
    torch.manual_seed(0)
    net = r2plus1d_tiny(num_classes=3).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    clips = torch.randint(0, 256, (6, 3, 4, 32, 32), dtype=torch.uint8, device=device)
    labels = torch.tensor([0, 1, 2, 0, 1, 2], device=device)
    losses = [steps.finetune_step(net, opt, clips, labels, "single_label").item() for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: runs on the GPU machine (jobs/gpu_check.py runs these tests there)")
def test_bf16_channels_last_step_on_cuda():
    net = r2plus1d_tiny(num_classes=3).cuda().to(memory_format=torch.channels_last_3d)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    clips = torch.randint(0, 256, (4, 3, 4, 32, 32), dtype=torch.uint8, device="cuda")
    loss = steps.finetune_step(net, opt, clips, torch.tensor([0, 1, 2, 0], device="cuda"), "single_label",
                               autocast_dtype=torch.bfloat16, memory_format=torch.channels_last_3d)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
