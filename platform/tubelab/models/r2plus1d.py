"""R(2+1)D video ResNet with torchvision's exact module layout.

torchvision is not importable beside our torch build, but public checkpoints (torchvision's
Kinetics weights, SEVERE's converted self-supervised weights) use its state-dict keys, so the
module tree here mirrors torchvision.models.video.VideoResNet(BasicBlock, Conv2Plus1D, [2, 2, 2, 2],
R2Plus1dStem) key for key. The widths are parameters so that the tiny CPU variant shares the code
path and the key naming (and therefore the checkpoint loading) with the real model.
"""

import torch
import torch.nn as nn


def midplanes(inplanes, planes):
    """Width between the spatial and temporal conv: keeps the (2+1)D block's parameter count close
    to that of a full 3x3x3 conv (R(2+1)D paper, eq. 1; torchvision's formula)."""
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class Conv2Plus1D(nn.Sequential):
    """A 3x3x3 conv factorised into a (1,3,3) spatial conv, BN, ReLU and a (3,1,1) temporal conv."""

    def __init__(self, in_planes, out_planes, mid_planes, stride=1):
        super().__init__(
            nn.Conv3d(in_planes, mid_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                      padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid_planes),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid_planes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                      padding=(1, 0, 0), bias=False),
        )


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        mid = midplanes(inplanes, planes)  # torchvision uses the same mid width for both convs
        self.conv1 = nn.Sequential(Conv2Plus1D(inplanes, planes, mid, stride),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes),
            )

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        out += residual
        return self.relu(out)


# What the stem sees, and its channel count. "rgb_diff" adds each frame's difference to the previous one
# (zero for the first) to the normalised RGB frames: the tiny model learns the synthetic motion classes
# from random initialisation on every seed tried with it and on about half without it, where it sits at
# chance for 4-8+ epochs (docs/results.md "Proxy recipe search, part 2"). The paper's model is RGB.
INPUTS = {"rgb": 3, "rgb_diff": 6}
DIFF_GAIN = 3.0  # the differences of normalised frames are small next to the frames; the measured setting


def frame_differences(x):
    """(B, 3, T, H, W) normalised clips -> (B, 6, T, H, W): the frames, then DIFF_GAIN x (frame t - frame t-1)."""
    diff = torch.zeros_like(x)
    diff[:, :, 1:] = x[:, :, 1:] - x[:, :, :-1]
    return torch.cat([x, DIFF_GAIN * diff], dim=1)


class R2Plus1D(nn.Module):
    """Video ResNet on (B, C, T, H, W) clips. Layers 2-4 halve T, H and W; the stem halves H, W.

    forward_features returns the pooled (B, feature_dim) embedding that pretraining heads and
    linear probes use; forward adds the classifier fc on top.
    """

    def __init__(self, num_classes=400, stem_planes=(45, 64), widths=(64, 128, 256, 512),
                 blocks=(2, 2, 2, 2), input="rgb"):
        super().__init__()
        if input not in INPUTS:
            raise ValueError(f"model input {input!r} is not valid; choose one of: {', '.join(INPUTS)}")
        self.input = input
        stem_mid, stem_out = stem_planes
        self.stem = nn.Sequential(
            nn.Conv3d(INPUTS[input], stem_mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                      bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, stem_out, kernel_size=(3, 1, 1), stride=(1, 1, 1),
                      padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(stem_out),
            nn.ReLU(inplace=True),
        )
        inplanes = stem_out
        for i, (planes, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(inplanes, planes, stride)]
            layer += [BasicBlock(planes, planes) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.feature_dim = inplanes
        self.dropout = nn.Dropout(0.0)  # before the classifier; fine-tuning sets p (setting.head_dropout)
        self.fc = nn.Linear(inplanes, num_classes)
        self._init_weights()

    def _init_weights(self):
        # torchvision's VideoResNet init, so that from-scratch baselines match the reference code
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        x = self.stem(frame_differences(x) if self.input == "rgb_diff" else x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x):
        return self.fc(self.dropout(self.forward_features(x)))


def r2plus1d_18(num_classes=400, input="rgb"):
    """torchvision's r2plus1d_18: 31,505,325 parameters at 400 classes, feature_dim 512 (with RGB input)."""
    return R2Plus1D(num_classes, input=input)


def r2plus1d_tiny(num_classes=400, input="rgb"):
    """Same block structure and key names, one block per stage and narrow early stages (where the
    compute is), for CPU runs: 0.76 M parameters, feature_dim 128. `input`: one of INPUTS."""
    return R2Plus1D(num_classes, stem_planes=(8, 8), widths=(8, 32, 64, 128), blocks=(1, 1, 1, 1), input=input)
