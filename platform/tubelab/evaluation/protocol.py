"""Which protocol produced a fine-tuning score, in one line: printed under every table, tagged on every run.

Two scores are comparable only under the same protocol: how the scored model was chosen (on a validation
split carved from train, or the last epoch of training on the whole train split) and the recipe switches
that move numbers away from SEVERE's fine-tuning (docs/recipes.md "Deviations"). A table whose settings ran
under different protocols says so.
"""

from __future__ import annotations

from collections.abc import Iterable

SEVERE_COLOUR_JITTER = [0.4, 0.4, 0.4, 0.2]
# Input normalisation (mean, std per RGB channel): ImageNet's in SEVERE's action recognition and counting code,
# SlowFast's defaults (DATA.MEAN, DATA.STD) in its Charades code.
STATS = {"ImageNet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "SlowFast": ([0.45] * 3, [0.225] * 3)}
TAG = "tubelab.protocol"  # on each fine-tune run; trial runs carry one per setting: f"{TAG}/{setting id}"


def describe(setting) -> str:
    """e.g. "model selected on a 10 % validation split of train; no colour jitter, per-worker BN"."""
    if setting.val_fraction:
        chosen = f"model selected on a {setting.val_fraction * 100:g} % validation split of train"
    else:
        chosen = "last epoch, trained on all of train"
    changes = []
    multi_label = setting.get("metric") == "map"  # Charades and its proxy: SEVERE runs them on SlowFast's code
    counting = setting.get("metric") in ("repetition_error", "obo")  # UCF-RC: on Zhang et al.'s counting code
    jitter = setting.clip.get("colour_jitter")
    official_jitter = None if multi_label or counting else SEVERE_COLOUR_JITTER
    if jitter is None and official_jitter is not None:
        changes.append("no colour jitter")
    elif jitter is not None and list(jitter) != official_jitter:
        changes.append(f"colour jitter {list(jitter)}")
    if setting.get("batchnorm", "global") != "global":
        changes.append("per-worker BN")
    if multi_label and setting.clip.get("labels", "frames") == "video":
        changes.append("video-level clip labels")
    if multi_label and not setting.get("precise_bn_batches"):
        changes.append("no precise BN")
    if (setting.clip.get("channels", "rgb") == "bgr") != multi_label:  # SlowFast's Charades config feeds BGR
        changes.append(f"{setting.clip.get('channels', 'rgb').upper()} input")
    stats = (list(setting.clip.get("mean", STATS["ImageNet"][0])), list(setting.clip.get("std", STATS["ImageNet"][1])))
    if stats != STATS["SlowFast" if multi_label else "ImageNet"]:
        name = next((k for k, v in STATS.items() if v == stats), None)
        changes.append(f"{name} normalisation" if name else f"normalisation mean {stats[0]}, std {stats[1]}")
    opt = setting.get("optimizer", {})
    if multi_label and opt.get("name") == "sgd":  # SlowFast's SGD: Nesterov, no weight decay on BN
        if not opt.get("nesterov", False):
            changes.append("no Nesterov")
        bn_decay = opt.get("bn_weight_decay")
        if (opt.get("weight_decay", 0) if bn_decay is None else bn_decay) != 0:
            changes.append("weight decay on BN")
    schedule = setting.get("schedule", {})
    if multi_label and schedule.get("warmup_epochs") and schedule.get("warmup_start_lr") is None:
        changes.append("per-epoch warm-up")
    if counting and setting.get("counting", {}).get("method", "context") == "clip":
        changes.append("one clip's count regressed")
    if not setting.get("strict_load", True):
        changes.append("non-strict checkpoint loading")
    return chosen + (f"; {', '.join(changes)}" if changes else "")


def as_tags(protocols: dict[str, str]) -> dict[str, str]:
    """{setting id: describe(...)} as the MLflow tags of a run that holds several settings (trial, SEVERE)."""
    return {f"{TAG}/{k}": v for k, v in protocols.items()}


def from_tags(tags: dict[str, str]) -> list[tuple[str, str]]:
    """The (setting id, description) pairs as_tags wrote."""
    return [(k.split("/", 1)[1], v) for k, v in sorted(tags.items()) if k.startswith(TAG + "/")]


def caption(protocols: Iterable[tuple[str, str]]) -> str:
    """One line for a table from (setting id, describe(...)) pairs, one pair per run behind its cells.

    Settings may differ from their own official recipes in different ways (Charades runs on SlowFast's
    code): under one model selection those are listed per setting. Cells are flagged "compare with care"
    when the model selection differs, or when one setting's runs differ among themselves."""
    by_protocol: dict[str, list[str]] = {}
    by_setting: dict[str, set[str]] = {}
    for setting_id, text in protocols:
        ids = by_protocol.setdefault(text, [])
        if setting_id not in ids:
            ids.append(setting_id)
        by_setting.setdefault(setting_id, set()).add(text)
    if not by_protocol:
        return "Protocol: not recorded (runs made before tubelab tagged it)."
    if len(by_protocol) == 1:
        return f"Protocol: {next(iter(by_protocol))}."
    selections = {text.split("; ", 1)[0] for text in by_protocol}
    if len(selections) == 1 and all(len(texts) == 1 for texts in by_setting.values()):
        return f"Protocol: {selections.pop()}; " + " | ".join(
            f"{', '.join(ids)}: {text.split('; ', 1)[1] if '; ' in text else 'as official'}"
            for text, ids in by_protocol.items()) + "."
    return "Protocols differ between cells, compare with care: " + " | ".join(
        f"{', '.join(ids)}: {text}" for text, ids in by_protocol.items()) + "."
