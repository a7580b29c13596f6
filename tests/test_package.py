"""The project as a package: `pip install .` into a fresh venv gives a `normbt-viz` command that trains and
serves the app from any folder, and the exported model's card is hub-ready.

The venv reuses the already-installed dependencies (a .pth file to the test interpreter's site-packages) and the
package is installed with --no-deps, so the test needs no network and no download; what it proves is the
package's own metadata: its modules, its console script and the app files it ships.
"""

from __future__ import annotations

import os
import shutil
import site
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from normbt_viz.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("pyproject.toml", "README.md", "app.py", "pages", ".streamlit", "normbt_viz")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the project pip-installed into it (from a copy of the source, so no build files land in
    the checkout); returns the venv folder."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    venv_site = next((venv / "lib").glob("python3*/site-packages"))
    (venv_site / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--disable-pip-version-check", str(source)], check=True, cwd=work)
    return venv


def run_outside(venv: Path, args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    env.pop("NORMBT_VIZ_RUNS", None)  # a user's shell has none: runs go to ./runs (other tests' fixtures set it)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


def test_installed_command_trains_from_outside_the_repository(installed, tmp_path):
    where = run_outside(installed, ["python", "-c", "import normbt_viz; print(normbt_viz.__file__)"], tmp_path, check=True)
    assert where.stdout.strip().startswith(str(installed))  # the installed copy, not the checkout
    help_text = run_outside(installed, ["normbt-viz", "--help"], tmp_path, check=True).stdout
    for command in ("train", "compare", "runs", "report", "rewardbench", "audit", "app", "export"):
        assert command in help_text
    trained = run_outside(installed, ["normbt-viz", "train", "--dataset", "demo", "--demo-size", "40", "--max-steps", "2"], tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "eval_accuracy=" in trained.stdout
    (run,) = list((tmp_path / "runs").iterdir())
    assert (run / "model" / "sequence_classification" / "README.md").is_file()


def test_installed_app_serves_from_outside_the_repository(installed, tmp_path):
    from normbt_viz.ui.serve import free_port, wait_healthy

    folder = run_outside(installed, ["python", "-c", "from normbt_viz.ui.launch import app_folder; print(app_folder())"], tmp_path, check=True)
    assert Path(folder.stdout.strip()) == installed / "share" / "normbt-viz"
    assert (installed / "share" / "normbt-viz" / "pages" / "4_Gradients.py").is_file()
    port = free_port()
    env = {**os.environ, "PATH": f"{installed / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    with open(tmp_path / "app.log", "w") as log:
        server = subprocess.Popen(["normbt-viz", "app", "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://localhost:{port}", server, timeout=90)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "localhost" in (tmp_path / "app.log").read_text()
    # `normbt-viz app` is the server itself (no child left serving the port once it is stopped).
    with socket.socket() as probe:
        assert probe.connect_ex(("localhost", port)) != 0


def test_model_card_names_every_normbt_choice_with_hub_front_matter():
    from huggingface_hub import ModelCard

    from normbt_viz.model.card import model_card

    spec = RunSpec(backbone="smollm2", loss="normbt", normbt_weight_clip=3.0, normbt_eps=1e-6, normbt_beta=0.9, max_steps=10).resolve()
    scores = {"rewardbench": {"score": 0.61, "sections": {"Chat": 0.7, "Reasoning": 0.55}}}
    text = model_card(spec, exported=True, load_report={"n_train": 800, "n_eval": 200, "n_skipped_rows": 3}, scores=scores, final_mu=2.5)
    card = ModelCard(text)  # the hub's own parser: the front matter must be YAML it accepts
    assert card.data.library_name == "transformers" and card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "reward-model" in card.data.tags and card.data.pipeline_tag == "text-classification"
    for choice in ("ε (in μ / (d + ε)) | 1e-06", "β (EMA factor of μ) | 0.9", "μ₀", "when μ moves", "gradient accumulation",
                   "data parallelism", "weight clip | w = min(μ / (d + ε), 3)", "distance d | L2", "final μ | 2.5"):
        assert choice in card.text, choice
    assert "800 training pairs" in card.text and "3 rows skipped as invalid" in card.text
    assert "| rewardbench | Reasoning | 0.55 |" in card.text
    assert "AutoModelForSequenceClassification.from_pretrained" in card.text


def test_export_command_refreshes_the_card_and_checks_the_repo_id(tmp_path, capsys):
    from normbt_viz.cli import main
    from normbt_viz.runs.launcher import train_inline

    run, status = train_inline(RunSpec(backbone="minilm", demo_size=40, max_steps=2), tmp_path)
    assert status["state"] == "done"
    card = (run.model_path / "sequence_classification" / "README.md").read_text()
    assert card.startswith("---\n") and "encoder" in card  # a MiniLM run is not exported: its card says why
    assert main(["export", str(run.path)]) == 2
    assert "has no AutoModelForSequenceClassification export" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "--push-to-hub", "me/model"]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_pyproject_dependencies_are_requirements_txt():
    """`make` installs requirements.txt and pip installs pyproject.toml's dependencies: the two lists stay one."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert sorted(project["dependencies"]) == sorted(p for p in pinned if p)
    dev = [line.split("#")[0].strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()]
    extras = project["optional-dependencies"]
    assert {d.split(">")[0].split("=")[0] for d in dev if d} <= {"pytest", "playwright", "trl", "tensorboard"}
    assert "trl" in extras and set(extras["trackers"][0].split("[")[1].rstrip("]").split(",")) == {"tensorboard", "wandb", "trackio", "mlflow"}
