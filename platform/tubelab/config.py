"""Config composition: Hydra primary configs in tubelab/conf, plus the repo's datasets/ and ablations/.

The dataset cards and ablations live at the project root (they are data that researchers edit, not
library code). They are registered in Hydra's ConfigStore as the groups `dataset` and `ablation`, so
`dataset=NAME` / `ablation=NAME` are ordinary Hydra group choices with Hydra's own error listing the
valid options.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parent / "conf"


class ConfigError(ValueError):
    """A config problem found before any cluster work: the message names the problem and the fix."""


def project_root() -> Path:
    """The directory holding datasets/ and ablations/: $TUBELAB_PROJECT_ROOT, the cwd, or the source tree."""
    candidates = [os.environ.get("TUBELAB_PROJECT_ROOT"), os.getcwd(), str(Path(__file__).resolve().parents[2])]
    for c in candidates:
        if c and (Path(c) / "ablations").is_dir() and (Path(c) / "datasets").is_dir():
            return Path(c).resolve()
    raise ConfigError(
        "cannot find the project's ablations/ and datasets/ folders; run from the project root "
        "or set TUBELAB_PROJECT_ROOT to it"
    )


def _register_repo_groups(root: Path) -> None:
    cs = ConfigStore.instance()
    for group, folder in (("dataset", "datasets"), ("ablation", "ablations")):
        for path in sorted((root / folder).glob("*.yaml")):
            cs.store(group=group, name=path.stem, node=OmegaConf.load(path))


def choices(group: str) -> list[str]:
    """Valid options of a config group, for error messages."""
    if group in ("dataset", "ablation"):
        folder = {"dataset": "datasets", "ablation": "ablations"}[group]
        return sorted(p.stem for p in (project_root() / folder).glob("*.yaml"))
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))  # _x: shared bases


def load(config_name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose `conf/<config_name>.yaml` with command-line style overrides (struct mode: no new keys).

    Raises ConfigError (before Ray or MLflow start) for unknown groups, options and keys. The chosen
    option of every group is kept under the `choices` key (e.g. cfg.choices.ablation == "demo").
    """
    root = project_root()
    _register_repo_groups(root)
    overrides = list(overrides)
    for o in overrides:
        if "=" not in o and not o.startswith("~"):
            raise ConfigError(f"override {o!r} is not of the form key=value (e.g. ablation=demo)")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except HydraException as e:
        raise ConfigError(_explain(config_name, str(e))) from None
    chosen = {k: v for k, v in cfg.hydra.runtime.choices.items() if not k.startswith("hydra")}
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.choices = chosen
        if "home" in cfg:  # Ray workers and Tune trials run in other directories
            cfg.home = str(Path(cfg.home).expanduser().resolve())
        if "checkpoint" in cfg:  # the same for a checkpoint typed as a relative path
            cfg.checkpoint = resolve_checkpoint(cfg.checkpoint)
        keep_secrets_out(cfg)
    OmegaConf.set_struct(cfg, True)
    return cfg


RANDOM_INIT = "random"  # checkpoint=random in a sweep: fine-tune from random initialisation


def resolve_checkpoint(value):
    """A local checkpoint path made absolute (Ray workers run in another cwd); URLs (s3://, file://...),
    null and the `random` sentinel stay as they are."""
    if not isinstance(value, str) or not value or value == RANDOM_INIT or "://" in value:
        return value
    return str(Path(value).expanduser().resolve())


CHECKPOINT_FILE = "checkpoint.pt"  # = training.common.CHECKPOINT_FILE (kept here so that checks import no torch)


def command_groups(config_name: str) -> dict[str, str | None]:
    """The config groups a primary config composes ({group: default option}), from its defaults list
    (following the primary configs it includes, e.g. sweep -> pretrain); for `--help`."""
    out: dict[str, str | None] = {}
    path = CONF_DIR / f"{config_name}.yaml"
    if not path.is_file():
        return out
    for entry in OmegaConf.load(path).get("defaults") or []:
        if isinstance(entry, str):
            if entry != "_self_":
                out.update(command_groups(entry))
        else:
            for group, option in entry.items():
                out[str(group).split("@")[0].lstrip("/")] = None if option is None else str(option)
    return out


def groups_help(config_name: str) -> str:
    """`--help` text: every config group of a command with its choices (default marked *)."""
    try:
        groups = command_groups(config_name)
        lines = ["config groups (GROUP=CHOICE, * = default; a key inside one: GROUP.KEY=VALUE):"]
        for group, default in groups.items():
            names = [f"{c}*" if c == default else c for c in choices(group)]
            lines.append(textwrap.fill(", ".join(names), width=100, initial_indent=f"  {group:<10} ",
                                       subsequent_indent=" " * 13, break_on_hyphens=False))
    except ConfigError:
        return ""
    return "\n".join(lines) if groups else ""


SECRET_KEY = re.compile(r"(^|_)(password|passwd|secret|secret_key|access_key|token|api_key|credentials?)$", re.IGNORECASE)
MLFLOW_CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
FROM_URI: set[str] = set()  # the MLFLOW_CREDENTIALS that keep_secrets_out took from a URI in this process


def keep_secrets_out(cfg: DictConfig) -> None:
    """A config is logged whole (MLflow params, config.yaml, Tune's trial dirs, checkpoints), so it must
    hold no secret. An MLflow URI with user:password@ (typed, or from $MLFLOW_TRACKING_URI) loses them
    to MLFLOW_TRACKING_USERNAME / _PASSWORD, where MLflow's client reads them; any other credential in
    a value, or a key named like one, is refused with where to put it instead."""
    uri = OmegaConf.select(cfg, "tracking.uri")
    if isinstance(uri, str) and _userinfo(uri):
        parts = urlsplit(uri)
        os.environ[MLFLOW_CREDENTIALS[0]] = parts.username or ""
        FROM_URI.add(MLFLOW_CREDENTIALS[0])
        if parts.password is not None:
            os.environ[MLFLOW_CREDENTIALS[1]] = parts.password
            FROM_URI.add(MLFLOW_CREDENTIALS[1])
        cfg.tracking.uri = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    for key, value in flatten(OmegaConf.to_container(cfg, resolve=True)).items():
        if SECRET_KEY.search(key.rsplit(".", 1)[-1]):
            raise ConfigError(f"config key {key!r} looks like a secret, and configs are logged to MLflow; put "
                              f"credentials in the environment instead (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                              f"MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN)")
        if isinstance(value, str) and _userinfo(value):
            raise ConfigError(f"{key} holds a URL with credentials (user:password@), and configs are logged to "
                              f"MLflow; drop them from the URL and put them in the environment instead")


def _userinfo(value: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*://[^/@\s]*@", value, re.IGNORECASE) is not None


def _explain(config_name: str, message: str) -> str:
    """Turn Hydra's message into one that lists the valid choices."""
    m = re.search(r"Could not find '([\w/]+)/([\w.-]+)'", message)
    if m:
        group, name = m.group(1), m.group(2)
        return f"unknown {group} {name!r}; choose one of: {', '.join(choices(group))}"
    m = re.search(r"Could not override '([\w.]+)'", message) or re.search(r"Key '([\w.]+)' is not in struct", message)
    if m:
        key = m.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            base = compose(config_name=config_name)
        node = OmegaConf.select(base, parent) if parent else base
        valid = ", ".join(sorted(node.keys())) if isinstance(node, DictConfig) else "(none)"
        where = f"under '{parent}'" if parent else "at the top level"
        return f"unknown config key {key!r}; valid keys {where}: {valid}"
    return message


def split_card_overrides(overrides) -> tuple[list[str], dict[str, list[str]]]:
    """`card.NAME.KEY=V` overrides change the dataset card NAME wherever it is prepared (e.g. a smaller
    synthetic proxy for a smoke test); returns (other overrides, {NAME: ["dataset.KEY=V", ...]})."""
    rest, cards = [], {}
    for o in overrides:
        if o.startswith("card."):
            name, _, tail = o[len("card."):].partition(".")
            if not name or not tail:
                raise ConfigError(f"override {o!r} must look like card.NAME.KEY=VALUE (e.g. card.synthetic_fine."
                                  f"generator.train_per_class=4)")
            cards.setdefault(name, []).append(f"dataset.{tail}")
        else:
            rest.append(o)
    for name in cards:
        if name not in choices("dataset"):
            raise ConfigError(f"card.{name}: no dataset card {name!r}; choose one of: {', '.join(choices('dataset'))}")
    return rest, cards


def to_container(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': 1}} -> {'a.b': 1}: MLflow params must be flat (nested dicts crash log_params)."""
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
