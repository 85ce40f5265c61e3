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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tubelab", description="Video self-supervised learning experiments on Ray.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Overrides are Hydra syntax, e.g. `tubelab sweep ablation=demo pretrain.epochs=2`.")
    sub = p.add_subparsers(dest="command", metavar="command", required=True)
    for name, help_text in COMMANDS.items():
        s = sub.add_parser(name, help=help_text, description=help_text)
        if name == "tubelets":
            s.add_argument("action", choices=["preview"])
        if name == "sweep":
            s.add_argument("--resume", action="store_true",
                           help="continue an interrupted sweep (name=..., else this ablation's newest unfinished "
                                "one): only its unfinished trials run")
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
    from tubelab import config, resources
    from tubelab.data import storage
    from tubelab.data.prepare import ensure_shards
    from tubelab.sweeps.run import validate_run
    from tubelab.sweeps.trial import checkpoint_uri
    from tubelab.tracking import mlflow_runs
    from tubelab.training.pretrain import run_pretrain

    cfg = config.load("pretrain", overrides)
    validate_run(cfg)
    storage.check_local_store(cfg)
    mlflow_runs.check_reachable(cfg)
    ensure_shards(cfg, cfg.dataset.name)
    resources.init_ray(cfg.resources)
    name = cfg.name or f"pretrain-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id = mlflow_runs.start_run(cfg, name, kind="pretrain", resume=True)
    mlflow_runs.log_params(cfg, run_id, config.to_container(cfg))
    result = run_pretrain(cfg, name=name, run_id=run_id)
    uri = checkpoint_uri(cfg, result.checkpoint)
    mlflow_runs.set_tags(cfg, run_id, {"checkpoint_uri": uri})
    mlflow_runs.end_run(cfg, run_id)
    print(f"checkpoint: {uri}")


def cmd_finetune(overrides):
    from tubelab import config, resources
    from tubelab.data import storage
    from tubelab.data.prepare import ensure_shards
    from tubelab.tracking import mlflow_runs
    from tubelab.training.finetune import run_finetune

    cfg = config.load("finetune", overrides)
    storage.check_local_store(cfg)
    mlflow_runs.check_reachable(cfg)
    ensure_shards(cfg, cfg.setting.dataset)
    resources.init_ray(cfg.resources)
    name = cfg.name or f"finetune-{cfg.setting.id}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_id = mlflow_runs.start_run(cfg, name, kind="finetune", resume=True)
    mlflow_runs.log_params(cfg, run_id, config.to_container(cfg))
    result = run_finetune(cfg, name=name, run_id=run_id)
    score = result.metrics["score"]
    mlflow_runs.log_metrics(cfg, run_id, {f"score/{cfg.setting.id}/{cfg.setting.metric}": score}, step=0)
    mlflow_runs.end_run(cfg, run_id)
    print(f"{cfg.setting.id} {cfg.setting.metric}: {score:.2f}")


def cmd_sweep(overrides, resume=False):
    from tubelab.sweeps.run import run_sweep

    run_sweep(overrides, resume=resume)


def cmd_severe(overrides):
    from tubelab.evaluation.severe_run import run_severe

    run_severe(overrides)


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
    from tubelab.training.preview import preview

    for path in preview(overrides):
        print(path)


def main(argv: list[str] | None = None) -> int:
    from tubelab.config import ConfigError

    args = parser().parse_args(argv)
    handler = globals()[f"cmd_{args.command}"]
    try:
        handler(args.overrides, **({"resume": args.resume} if args.command == "sweep" else {}))
    except ConfigError as e:
        print(f"tubelab {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
