"""`tubelab <command> [key=value ...]`: every command takes Hydra overrides of its primary config."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

COMMANDS = {
    "prepare": "index a dataset tree, re-encode it and write Parquet shards + manifest (dataset=NAME source=DIR out=URL)",
    "pretrain": "one tubelet-contrast pretraining run on Ray Train (name=... resumes)",
    "finetune": "one downstream fine-tune of a checkpoint (setting=ID checkpoint=URI)",
    "sweep": "run an ablation grid with Ray Tune: pretrain -> fine-tune -> table (ablation=NAME)",
    "severe": "evaluate a checkpoint on SEVERE: every setting as a parallel trial -> the table (checkpoint=URI suite=proxy|real)",
    "report": "rebuild a sweep's table (sweep=NAME_OR_RUN_ID) or SEVERE tables (severe=NAME[,NAME...]) from MLflow",
    "ui": "serve the MLflow UI of the tracking store on 127.0.0.1 (port=5000)",
    "bench": "run the benchmarks in jobs/benchmark_*.py",
    "tubelets": "tubelets preview [tubelet=...]: write a PNG contact sheet and a GIF of tubelet pairs",
}


HELP_CONFIG = {"prepare": "prepare", "pretrain": "pretrain", "finetune": "finetune", "sweep": "sweep",
               "severe": "severe", "tubelets": "pretrain"}  # the primary config whose groups `--help` lists
HELP_NOTES = {
    "sweep": "setting.KEY=VALUE applies to every downstream setting of the ablation (conf/setting/).",
    "severe": "suite=proxy|real; setting.KEY=VALUE applies to every SEVERE setting; label=NAME names the row.",
    "report": "tracking and storage as in the other commands: tracking=local|server, storage=local|s3; "
              "resources.address=DASHBOARD_URL (the cluster a sweep ran on) also logs its scaling timeline.",
    "ui": "port=PORT (default 5000); tracking=local|server.",
}


def parser(groups: bool = False) -> argparse.ArgumentParser:
    """The argument parser; with `groups` (only when help is asked for: it reads conf/, datasets/ and
    ablations/), each command's help lists its config groups and their choices."""
    from tubelab.config import groups_help

    p = argparse.ArgumentParser(prog="tubelab", description="Video self-supervised learning experiments on Ray.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Overrides are Hydra syntax, e.g. `tubelab sweep ablation=demo pretrain.epochs=2`; "
                                       "`tubelab COMMAND --help` lists a command's config groups and their choices.")
    sub = p.add_subparsers(dest="command", metavar="command", required=True)
    for name, help_text in COMMANDS.items():
        epilog = "\n\n".join(x for x in (groups_help(HELP_CONFIG[name]) if groups and name in HELP_CONFIG else "",
                                          HELP_NOTES.get(name, "") if groups else "") if x)
        s = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog or None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "tubelets":
            s.add_argument("action", choices=["preview"])
        if name == "sweep":
            s.add_argument("--resume", action="store_true",
                           help="continue an interrupted sweep (name=..., else this ablation's newest unfinished "
                                "one): only its unfinished trials run")
        s.add_argument("-v", "--verbose", action="store_true",
                       help="also show Ray's and torch's internals (or TUBELAB_VERBOSE=1); they are always in Ray's logs")
        s.add_argument("overrides", nargs="*", help="key=value config overrides")
    return p


def cmd_prepare(overrides):
    from tubelab import config
    from tubelab.data import shards, storage
    from tubelab.data.prepare import prepare

    cfg = config.load("prepare", overrides)
    storage.check_local_store(cfg)
    manifest, url = prepare(cfg)
    counts = ", ".join(f"{k}: {v['videos']}" for k, v in manifest["splits"].items())
    print(f"{manifest['dataset']}: {len(manifest['classes'])} classes ({counts}) at {url}")
    print(f"content hash {manifest['content_hash']}; problems listed in {storage.join(url, shards.REPORT)}")


def cmd_pretrain(overrides):
    from tubelab import config
    from tubelab.data import storage
    from tubelab.experiments.plan import validate_run

    cfg = config.load("pretrain", overrides)
    validate_run(cfg)
    storage.check_local_store(cfg)

    from tubelab import resources  # MLflow, Ray Data and Ray Train: imported once the config checks passed
    from tubelab.data.prepare import ensure_shards
    from tubelab.experiments.stages import pretrain_stage
    from tubelab.tracking import mlflow_runs

    mlflow_runs.check_reachable(cfg)
    if cfg.name and previous_pretrain(cfg, config.to_container(cfg)):
        return
    ensure_shards(cfg, cfg.dataset.name)
    resources.init_ray(cfg.resources)
    name = cfg.name or f"pretrain-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id = mlflow_runs.start_run(cfg, name, kind="pretrain", resume=True)
    uri = pretrain_stage(cfg, run_id, name, config.to_container(cfg))
    print(f"checkpoint: {uri}")


def previous_pretrain(cfg, params: dict) -> bool:
    """A rerun of `pretrain name=X`: True (after one line saying so) when run X already finished under this
    very config and its checkpoint is there, so nothing is started; a run that resumes under a changed
    config gets a warning naming the changed keys (compared with the params X recorded in MLflow)."""
    from tubelab.data import storage
    from tubelab.tracking import mlflow_runs

    run = mlflow_runs.find_run(cfg, cfg.name, "pretrain")
    if run is None:
        return False
    changed = mlflow_runs.changed_params(run, params)
    old_home, new_home = changed.pop("home", (None, None))
    if old_home:  # a moved or copied state folder (tracking.moved_home): its paths moved along, nothing changed
        changed = {k: (a, b) for k, (a, b) in changed.items()
                   if not a.startswith(old_home) or new_home + a[len(old_home):] != b}
    uri = run.data.tags.get("checkpoint_uri")
    finished = run.info.status == "FINISHED" and not changed and uri
    if finished and storage.has_checkpoint(uri, cfg.storage.get("endpoint_url")):
        print(f"pretraining run {cfg.name!r} already finished with this config (MLflow run {run.info.run_id}); "
              f"checkpoint: {uri}")
        return True
    changed.pop("pretrain.stop_epoch", None)  # stopping early and continuing later is what it is for
    if changed:
        keys = ", ".join(f"{k} ({old} -> {new})" for k, (old, new) in changed.items())
        print(f"tubelab pretrain: warning: resuming run {cfg.name!r} ({run.info.status.lower()}) under a changed "
              f"config: {keys}; it continues from its last checkpoint with the new values (choose another name= "
              f"to start afresh)", file=sys.stderr)
    return False


def cmd_finetune(overrides):
    from tubelab import config
    from tubelab.data import storage
    from tubelab.experiments.plan import validate_setting
    from tubelab.tracking import mlflow_runs

    overrides, cards = config.split_card_overrides(overrides)  # card.NAME.KEY=V, as in sweep and severe
    cfg = config.load("finetune", overrides)  # a relative checkpoint path is made absolute here
    validate_setting(cfg)
    storage.check_local_store(cfg)
    mlflow_runs.check_reachable(cfg)
    storage.check_checkpoint(cfg)  # before Ray: a wrong path is a user error, not a fault to retry

    from tubelab import resources  # Ray and torch: imported once the checks passed
    from tubelab.data.prepare import ensure_shards
    from tubelab.experiments.stages import finetune_stage
    from tubelab.tracking.schema import SCORE_PREFIX

    ensure_shards(cfg, cfg.setting.dataset, cards.get(cfg.setting.dataset, []))
    resources.init_ray(cfg.resources)
    name = cfg.name or f"finetune-{cfg.setting.id}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id = mlflow_runs.start_run(cfg, name, kind="finetune", resume=True)
    score = finetune_stage(cfg, run_id, name, config.to_container(cfg),
                           f"{SCORE_PREFIX}{cfg.setting.id}/{cfg.setting.metric}")
    print(f"{cfg.setting.id} {cfg.setting.metric}: {score:.2f}")


class Incomplete(Exception):
    """Some trials (or SEVERE settings) failed; what finished is recorded and a rerun picks up the rest. One line
    on stderr and exit 1, not a traceback: the failures' own tracebacks are in the log above and in MLflow."""


def cmd_sweep(overrides, resume=False):
    from tubelab import config
    from tubelab.experiments.plan import plan_sweep

    overrides, cards = config.split_card_overrides(overrides)
    plan = plan_sweep(overrides)  # every trial's config checked before MLflow, Ray Tune and Ray Train are imported

    from tubelab.experiments.sweep import run_sweep
    from tubelab.reporting import sweep_report
    from tubelab.tracking import mlflow_runs

    outcome = run_sweep(plan, cards, resume=resume)
    plan, base = outcome.plan, outcome.plan.base
    report = sweep_report.build(base, outcome.parent_run_id)
    sweep_report.publish(base, outcome.parent_run_id, report)
    print(f"\n{plan.name} ({base.ablation.description})\n\n{report.markdown}")
    print(f"MLflow: parent run {outcome.parent_run_id} in {mlflow_runs.tracking_uri(base)} (`tubelab ui` to browse)")
    failed = len(plan.trials) - report.finished
    if failed:
        raise Incomplete(f"{failed} of {len(plan.trials)} trials did not finish; rerun with --resume to run only "
                           f"those. " + "; ".join(outcome.errors))


def cmd_severe(overrides):
    import math

    from tubelab.experiments.severe import run_severe
    from tubelab.reporting import severe_table
    from tubelab.tracking import mlflow_runs
    from tubelab.tracking.schema import SEVERE_PREFIX

    outcome = run_severe(overrides)
    cfg, parent = outcome.cfg, outcome.parent_run_id
    ours = [severe_table.attach_intervals(mlflow_runs.client(cfg), mlflow_runs.experiment_id(cfg), parent,
                                          severe_table.row(outcome.label, outcome.scores))]
    if math.isfinite(ours[0]["mean"]):
        mlflow_runs.log_metrics(cfg, parent, {f"{SEVERE_PREFIX}mean": ours[0]["mean"]}, 0)
    markdown = severe_table.log_table(cfg, parent, ours, f"SEVERE ({cfg.suite}): {outcome.name}", outcome.protocol)
    print(f"\n{markdown}")
    failed = [k for k, v in outcome.scores.items() if not math.isfinite(v)]
    if failed:
        raise Incomplete(f"SEVERE settings failed: {', '.join(failed)} (see the MLflow child runs of {outcome.name})")


def cmd_report(overrides):
    from tubelab.reporting.report import report

    print(report(overrides))


def cmd_ui(overrides):
    from tubelab import config
    from tubelab.tracking import mlflow_runs

    port = "5000"
    rest = []
    for o in overrides:
        if o.startswith("port="):
            port = o.split("=", 1)[1]
        else:
            rest.append(o)
    cfg = config.load("pretrain", rest)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", mlflow_runs.tracking_uri(cfg),
           "--host", "127.0.0.1", "--port", port]
    root = mlflow_runs.artifact_root(cfg)
    if root:
        cmd += ["--default-artifact-root", root]
    print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    os.execv(sys.executable, cmd)


def cmd_bench(overrides):
    from tubelab.config import project_root

    for script in sorted((project_root() / "jobs").glob("benchmark_*.py")):
        print(f"== {script.name}")
        subprocess.run([sys.executable, str(script), *overrides], check=True)


def cmd_tubelets(overrides):
    from tubelab.experiments.preview import preview

    for path in preview(overrides):
        print(path)


def main(argv: list[str] | None = None) -> int:
    from tubelab import resources
    from tubelab.config import ConfigError

    argv = sys.argv[1:] if argv is None else list(argv)
    cli = parser(groups=any(a in ("-h", "--help") for a in argv))
    args, rest = cli.parse_known_args(argv)  # overrides after a flag (`sweep ablation=X --resume pretrain.epochs=1`)
    if any(a.startswith("-") for a in rest):
        cli.error(f"unrecognized arguments: {' '.join(rest)}")
    args.overrides += rest
    handler = globals()[f"cmd_{args.command}"]
    if args.verbose:
        os.environ[resources.VERBOSE_ENV] = "1"
    resources.hush()
    try:
        handler(args.overrides, **({"resume": args.resume} if args.command == "sweep" else {}))
    except Incomplete as e:
        print(f"tubelab {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        from tubelab.data.shards import ManifestError

        if not isinstance(e, (ConfigError, ManifestError)):  # user errors: one line; anything else is a bug
            raise
        print(f"tubelab {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
