"""Orchestration, in one package: the pretrain and fine-tune stages (stages.py), the sweep driver (plan.py ->
checks.py -> sweep.py, one trial in trial.py), SEVERE (severe.py), the one Ray Tune set-up (tune.py) and the
tubelet preview command (preview.py). Everything below it (reporting, training, evaluation, tracking, data,
the torch core) never imports it."""
