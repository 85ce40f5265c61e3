"""Strict, reported loading of backbone weights.

The SEVERE reference code loads with strict=False, so a renamed or missing layer passes silently and
a "pretrained" evaluation can run on random weights. Here every key the model has must come from
the checkpoint and every checkpoint key must land in the model, unless the caller names the
exception with a glob pattern (allow_missing=['fc.*']); the KeyReport says what happened.

Accepted inputs (a path to a torch.save file, or the object itself):
- tubelab checkpoint: {"model": backbone.state_dict(), ...} (what a pretraining checkpoint holds);
- a plain torchvision-format state dict, or one wrapped under "state_dict" (mmcv, MoCo, Lightning);
- pretraining checkpoints whose backbone keys carry "module." (DDP), "encoder_q." (MoCo) or
  "backbone." (tubelet-contrast/pyvrl) prefixes: the prefixes are stripped, and the momentum branch
  (encoder_k.*, key_encoder.*, key_fc.*, head_k.*), the queue buffers and projection heads
  (MoCo-v2's fc.0/fc.2 MLP, head.*, head_q.*, projector.*) are dropped and listed in the report;
- the released tubelet-contrast R(2+1)D checkpoint (pyvrl names such as stem.conv_s, bn1,
  downsample_bn) is renamed to torchvision's layout as SEVERE's converter does. pyvrl trained with
  BatchNorm eps=1e-3 where torchvision uses 1e-5; eps is not in a state dict, so, as in SEVERE, the
  weights load into the eps=1e-5 model.
"""

import fnmatch
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

STRIP_PREFIXES = ("module.", "encoder_q.", "backbone.")
DROP_PREFIXES = ("encoder_k.", "key_encoder.", "key_fc.", "head_k.", "head_q.", "head.",
                 "projector.")
DROP_KEYS = ("queue", "queue_ptr")
DROP_PATTERNS = (re.compile(r"^fc\.\d+\."),)  # MoCo-v2 swaps fc for an MLP: fc.0.*, fc.2.*

# pyvrl's R2Plus1D (tubelet-contrast, CtP) -> torchvision's module names.
PYVRL_RENAMES = [(re.compile(a), b) for a, b in [
    (r"^stem\.conv_s\.", "stem.0."),
    (r"^stem\.bn_s\.", "stem.1."),
    (r"^stem\.conv_t\.", "stem.3."),
    (r"^stem\.bn_t\.", "stem.4."),
    (r"^(layer\d+\.\d+\.conv[12])\.conv_s\.", r"\1.0.0."),
    (r"^(layer\d+\.\d+\.conv[12])\.bn_s\.", r"\1.0.1."),
    (r"^(layer\d+\.\d+\.conv[12])\.conv_t\.", r"\1.0.3."),
    (r"^(layer\d+\.\d+)\.bn([12])\.", r"\1.conv\2.1."),
    (r"^(layer\d+\.\d+\.downsample)\.conv\.", r"\1.0."),
    (r"^(layer\d+\.\d+)\.downsample_bn\.", r"\1.downsample.1."),
]]

# BatchNorm ignores num_batches_tracked when momentum is set, and checkpoints older than
# PyTorch 0.4.1 lack it: its absence is reported but never fails a load.
ALWAYS_ALLOWED_MISSING = ("*num_batches_tracked",)


class CheckpointMismatchError(ValueError):
    def __init__(self, message, report):
        super().__init__(message)
        self.report = report


class CheckpointReadError(RuntimeError):
    pass


@dataclass
class KeyReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model
    mismatched: dict[str, tuple] = field(default_factory=dict)  # key -> (ckpt shape, model shape)
    dropped: list[str] = field(default_factory=list)  # pretraining-only keys, original names
    renamed: dict[str, str] = field(default_factory=dict)  # original checkpoint key -> model key

    def summary(self):
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        lines = [f"loaded {len(self.loaded)}/{total} model tensors from {self.source}"]
        if self.renamed:
            lines.append(f"renamed {len(self.renamed)} keys (prefixes stripped / pyvrl names)")
        if self.dropped:
            lines.append(f"dropped {len(self.dropped)}: {_groups(self.dropped)}")
        for name in ("missing", "unexpected"):
            keys = getattr(self, name)
            if keys:
                lines.append(f"{name} (allowed): {', '.join(keys)}")
        if self.mismatched:
            lines.append("mismatched (allowed, model keeps its own): " + ", ".join(
                f"{k} {c} vs {m}" for k, (c, m) in self.mismatched.items()))
        return "\n".join(lines)


def _strip_prefixes(key):
    while key.startswith(STRIP_PREFIXES):  # e.g. module.encoder_q.stem.0.weight
        key = key.split(".", 1)[1]
    return key


def _top_level(key):
    return key.split(".")[0] + ".*" if "." in key else key


def _groups(keys):
    """'encoder_k.* (126)' style summary: short enough for logs with hundreds of dropped keys."""
    groups = Counter(_top_level(_strip_prefixes(k)) for k in keys)
    return ", ".join(f"{g} ({n})" for g, n in groups.items())


def _suggest(keys):
    return sorted(set(map(_top_level, keys)))


def _shape(value):
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _allowed(key, patterns):
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def read_checkpoint(path):
    """torch.load with weights_only=True (no arbitrary code from downloaded files)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointReadError(
            f"cannot read checkpoint {path} (truncated, corrupted or not a torch.save file?): "
            f"{type(e).__name__}: {e}. If the file is trusted but holds non-tensor objects, load "
            f"it with torch.load(..., weights_only=False) and pass the dict instead.") from e


def extract_state_dict(obj):
    """Unwrap {"model": ...} / {"state_dict": ...} until the tensors are reached."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in ("model", "state_dict") if isinstance(obj.get(k), Mapping)),
                     None)
        if inner is None:
            return obj
        obj = inner
    raise TypeError(f"expected a state dict (mapping of tensors), got {type(obj).__name__}")


def normalise_keys(state_dict, model_keys):
    """Map checkpoint keys to model keys. Returns (state dict, dropped keys, renamed keys)."""
    out, dropped, renamed = {}, [], {}
    for key, value in state_dict.items():
        new = _strip_prefixes(key)
        for pattern, repl in PYVRL_RENAMES:
            new = pattern.sub(repl, new)
        if new not in model_keys and (new.startswith(DROP_PREFIXES) or new in DROP_KEYS
                                      or any(p.match(new) for p in DROP_PATTERNS)):
            dropped.append(key)
            continue
        if new != key:
            renamed[key] = new
        out[new] = value
    return out, dropped, renamed


def load_backbone_state(model, state_dict_or_path, allow_missing=(), allow_unexpected=(),
                        allow_mismatched=()):
    """Load weights into model, failing on any key problem not covered by the allow patterns.

    allow_*: fnmatch globs over model key names, e.g. allow_missing=['fc.*'] to load a pretrained
    backbone under a fresh classifier, allow_mismatched=['fc.*'] for another number of classes.
    Allowed missing and mismatched keys keep the model's current values.
    """
    if isinstance(state_dict_or_path, Mapping):
        source, obj = "<state dict>", state_dict_or_path
    else:
        source, obj = os.fspath(state_dict_or_path), read_checkpoint(state_dict_or_path)
    model_state = model.state_dict()
    ckpt, dropped, renamed = normalise_keys(extract_state_dict(obj), model_state.keys())

    report = KeyReport(source=source, dropped=dropped, renamed=renamed)
    for key, value in ckpt.items():
        if key not in model_state:
            report.unexpected.append(key)
        elif not isinstance(value, torch.Tensor) or value.shape != model_state[key].shape:
            report.mismatched[key] = (_shape(value), tuple(model_state[key].shape))
        else:
            report.loaded.append(key)
    report.missing = [k for k in model_state if k not in ckpt]

    bad_missing = [k for k in report.missing
                   if not _allowed(k, tuple(allow_missing) + ALWAYS_ALLOWED_MISSING)]
    bad_unexpected = [k for k in report.unexpected if not _allowed(k, allow_unexpected)]
    bad_mismatched = [k for k in report.mismatched if not _allowed(k, allow_mismatched)]
    if bad_missing or bad_unexpected or bad_mismatched:
        lines = [f"checkpoint {source} does not match {type(model).__name__} "
                 f"({len(report.loaded)} of {len(model_state)} model tensors match):"]
        hints = []
        if bad_missing:
            lines.append(f"  missing from checkpoint ({len(bad_missing)}):")
            lines += [f"    {k} model {tuple(model_state[k].shape)}" for k in bad_missing]
            hints.append(f"allow_missing={_suggest(bad_missing)}")
        if bad_unexpected:
            lines.append(f"  unexpected in checkpoint ({len(bad_unexpected)}):")
            lines += [f"    {k} checkpoint {_shape(ckpt[k])}" for k in bad_unexpected]
            hints.append(f"allow_unexpected={_suggest(bad_unexpected)}")
        if bad_mismatched:
            lines.append(f"  shape mismatch ({len(bad_mismatched)}):")
            lines += [f"    {k} checkpoint {report.mismatched[k][0]} vs model "
                      f"{report.mismatched[k][1]}" for k in bad_mismatched]
            hints.append(f"allow_mismatched={_suggest(bad_mismatched)}")
        if dropped:
            lines.append(f"  (dropped as pretraining-only: {_groups(dropped)})")
        lines.append(f"If this is intended, pass {', '.join(hints)} (fnmatch patterns over model "
                     "key names); allowed keys keep the model's own values.")
        raise CheckpointMismatchError("\n".join(lines), report)

    model.load_state_dict({k: ckpt[k] for k in report.loaded}, strict=False)
    return report

