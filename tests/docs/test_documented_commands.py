"""The docs as a test (issue 17): every command README.md, datasets/README.md, infra/README.md and
docs/operations.md show is run by some test through `documented(doc, command)` (tests/documented.py),
or is listed below with the reason it cannot run on this machine. A command added to the docs without
a test, or a test whose command the docs no longer show, fails here."""

import ast
from pathlib import Path

import pytest

from documented import DOCS, code_lines, shown_commands, strip_comment

TESTS = Path(__file__).resolve().parents[1]
OFFLINE_AWS = "tests/infra/test_ray_cluster_yaml.py validates infra/aws/ offline (Ray's own cluster-YAML schema)"
OFFLINE_K8S = "tests/infra/test_k8s_manifests.py validates infra/k8s/ offline (Kubernetes' OpenAPI schemas)"
# (doc, the start of the command) -> why no test runs it here.
NOT_RUN_HERE = {
    ("README.md", "make test"): "the suite itself: CI and ../shared/tools/fresh-clone-check run it on a fresh clone",
    ("README.md", "make soak"): "20,000 clips by design: a run short enough for the suite cannot tell warm-up from "
                                "growth (300 clips read as GROWING on decord); docs/reliability.md has its figures",
    ("README.md", "python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu-kit"):
        "the GPU machine's command (a CUDA device and the kit `make gpu-kit` downloads); "
        "tests/jobs/test_gpu_check.py runs its `--device cpu --quick` form",
    ("README.md", "ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/sweep.py ablation=demo "
                  "storage=s3"):
        "needs a real bucket (TUBELAB_S3_URL); tests/e2e/test_cluster_submit_e2e.py submits the README's fuller "
        "form of this line, and tests/integration/data/test_data_s3.py runs storage=s3 against moto_server",
    ("README.md", "ray up"): f"an AWS account; {OFFLINE_AWS}",
    ("README.md", "ray dashboard"): f"an AWS account; {OFFLINE_AWS}",
    ("README.md", "ray job submit --runtime-env infra/aws/"): f"an AWS cluster; {OFFLINE_AWS}",
    ("README.md", "ray down"): f"an AWS account; {OFFLINE_AWS}",
    ("infra/README.md", "pip install"): "installs into the user's own Python from PyPI; make test installs the "
                                        "same Ray into .venv",
    ("infra/README.md", "aws ssm"): "an AWS account (SSM Parameter Store)",
    ("infra/README.md", "ray up"): f"an AWS account; {OFFLINE_AWS}",
    ("infra/README.md", "ray dashboard"): f"an AWS account; {OFFLINE_AWS}",
    ("infra/README.md", "export RAY_ADDRESS=http://127.0.0.1:8265"): "the AWS flow's shell (the `ray dashboard` tunnel)",
    ("infra/README.md", "ray job submit --runtime-env infra/aws/"):
        f"an AWS cluster; {OFFLINE_AWS}, and composes this line's overrides into a sweep config",
    ("infra/README.md", "ray attach"): f"an AWS account; {OFFLINE_AWS}",
    ("infra/README.md", "ray down"): f"an AWS account; {OFFLINE_AWS}",
    ("infra/README.md", "docker"): f"a container registry; {OFFLINE_K8S}",
    ("infra/README.md", "kubectl"): f"a Kubernetes cluster; {OFFLINE_K8S}",
}


def not_run_here(doc: str, command: str) -> bool:
    return any(d == doc and command.startswith(start) for d, start in NOT_RUN_HERE)


def commands_run_by_tests() -> dict[tuple[str, str], list[str]]:
    """(doc, command) -> the test files that run it, read from their `documented(...)` calls, whose
    arguments are string literals or names assigned one in the same file."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted([*TESTS.rglob("test_*.py"), *TESTS.rglob("conftest.py")]):
        tree = ast.parse(path.read_text())
        strings = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                   and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                   for t in n.targets if isinstance(t, ast.Name)}

        def text(arg):
            return arg.value if isinstance(arg, ast.Constant) else strings.get(getattr(arg, "id", None))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("documented", "documented_line"):
                doc, command = (text(a) for a in node.args[:2])
                assert doc and command, f"{path}:{node.lineno}: documented() needs literal arguments (or names of them)"
                found.setdefault((doc, command), []).append(str(path.relative_to(TESTS.parent)))
    return found


def test_every_documented_command_has_a_test():
    tested = commands_run_by_tests()
    untested = [f"{doc}: {c}" for doc in DOCS for c in shown_commands(doc)
                if (doc, c) not in tested and not not_run_here(doc, c)]
    assert not untested, "documented commands that no test runs (run one with tests/documented.py's " \
                         "`documented`, or list why it cannot run here):\n" + "\n".join(untested)


def test_every_tested_command_is_still_documented():
    gone = [f"{doc}: {c} ({', '.join(files)})" for (doc, c), files in commands_run_by_tests().items()
            if c not in shown_commands(doc)]
    assert not gone, "tests run commands the docs no longer show:\n" + "\n".join(gone)
    stale = [k for k in NOT_RUN_HERE if not any(c.startswith(k[1]) for c in shown_commands(k[0]))]
    assert not stale, f"NOT_RUN_HERE entries that match no documented command: {stale}"


def test_the_extraction_finds_commands_and_only_commands():
    """Checked against hand-picked lines, so an extraction that finds nothing cannot pass the tests above."""
    readme = shown_commands("README.md")
    assert "make demo" in readme and ".venv/bin/tubelab pretrain name=my-run" in readme  # comment stripped
    submit = next(c for c in readme if "--runtime-env-json" in c)  # backslashes and a multi-line quote joined
    assert submit.endswith("-- python jobs/sweep.py ablation=demo tracking=server")
    assert not any(c.startswith(("grid:", "tubelet:", "{")) for d in DOCS for c in shown_commands(d))  # YAML, JSON
    assert sum(len(shown_commands(d)) for d in DOCS) >= 40


@pytest.mark.parametrize("text, lines", [
    ("intro\n\n    make demo\n    make test\n\nprose\n", ["make demo", "make test"]),
    ("- a list item\n    continued, not code\n", []),
    ("```bash\nray up -y x.yaml   # comment\n```\n", ["ray up -y x.yaml   # comment"]),
])
def test_code_lines(text, lines):
    assert code_lines(text) == lines


def test_strip_comment_keeps_quoted_hashes():
    assert strip_comment("tubelab ui   # MLflow UI") == "tubelab ui"
    assert strip_comment("echo '# not a comment' x") == "echo '# not a comment' x"
