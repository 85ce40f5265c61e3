"""jobs/gpu_check.py cannot rot: its CPU quick mode runs on a small kit made here, writes every section's
keys, and imports none of the stack the GPU image lacks (ray, mlflow, hydra, ...)."""

import json
import subprocess
import sys
from pathlib import Path

from tiny import make_kit

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_THE_GPU_IMAGE = {"ray", "mlflow", "hydra", "fsspec", "s3fs", "av"}


def test_quick_cpu_run_writes_every_section_and_imports_no_cluster_stack(tmp_path, monkeypatch):
    kit = make_kit(tmp_path, monkeypatch)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "jobs" / "gpu_check.py"), "--kit", str(kit), "--out", str(out),
                           "--device", "cpu", "--quick", "--budget-s", "300"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert result["errors"] == {} and result["skipped"] == []
    assert result["ceiling"]["tflops"] > 0
    case = result["pretrain"][0]
    assert case["clips_per_s"] > 0 and case["flops_per_step"] > 0 and case["mfu_measured"] > 0
    assert result["finetune"][0]["clips_per_s"] > 0
    assert {t["batch"] for t in result["tubelets"]} == {4, 8} and all(t["plain_blend_ms"] > 0 for t in result["tubelets"])
    assert {(d["clips"], d["processes"]) for d in result["decode"]} == {(k, n) for k in ("pretrain", "severe")
                                                                         for n in (1, 2)}
    assert all(d["clips_per_s"] > 0 for d in result["decode"])
    assert 0 < result["e2e"]["stall_ratio"]
    assert set(result["targets"]) == {"pretrain_mfu_vs_measured", "tubelet_share_of_step", "decode_cores_per_gpu",
                                      "stall_ratio"}
    assert not NOT_ON_THE_GPU_IMAGE & set(result["imported"]), result["imported"]
    assert "| pretrain |" in (out / "gpu_check.md").read_text()
