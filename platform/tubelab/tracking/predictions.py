"""A fine-tune's per-video test predictions as one MLflow artifact, so reports can put intervals on
its score and compare two runs on the same test videos (evaluation.intervals).

predictions/test.npz: video_key (V,) int64, target (V,) or (V, C), prediction (V,) or (V, C) float32
(class probabilities, multi-label probabilities or counts), and task / metric / num_classes.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

from tubelab.tracking import mlflow_runs

ARTIFACT = "predictions/test.npz"


def log_predictions(cfg, run_id: str, *, task: str, metric: str, num_classes: int, video_key, target,
                    prediction) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, video_key=np.asarray(video_key, np.int64), target=np.asarray(target),
                        prediction=np.asarray(prediction, np.float32), task=np.array(task), metric=np.array(metric),
                        num_classes=np.array(num_classes))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / Path(ARTIFACT).name
        path.write_bytes(buf.getvalue())
        mlflow_runs.log_artifact(cfg, run_id, path, str(Path(ARTIFACT).parent))


def load_predictions(client, run_id: str) -> dict | None:
    """The run's predictions as a dict of arrays (task, metric as str, num_classes as int); None if it has none."""
    if not any(f.path == ARTIFACT for f in client.list_artifacts(run_id, str(Path(ARTIFACT).parent))):
        return None
    with tempfile.TemporaryDirectory() as d:
        with np.load(client.download_artifacts(run_id, ARTIFACT, d)) as z:
            out = {k: z[k] for k in ("video_key", "target", "prediction")}
            out.update(task=str(z["task"]), metric=str(z["metric"]), num_classes=int(z["num_classes"]))
    return out
