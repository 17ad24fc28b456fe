"""`examples/finetune.py`: Trainer fine-tuning on a learnable toy task, on 1 process and on 2 (torchrun, accelerate).

The toy task: bright frames with a high tone versus dark frames with a low tone. A few steps on a tiny TVLT must bring
the loss down, and the saved folder must classify new clips through the pipeline with remote code only.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _av_toys import TOY_CLASSES, save_tiny_checkpoint, toy_clip, toy_dataset
from conftest import REPO_ROOT, launcher_env, run_without_package


FINETUNE = REPO_ROOT / "examples" / "finetune.py"


def load_example():
    spec = importlib.util.spec_from_file_location("finetune_example", FINETUNE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return {
        "base": save_tiny_checkpoint(root / "base", "pretraining", seed=0),
        "csv": toy_dataset(root / "clips"),
        "clips": root / "clips",
        "root": root,
    }


def finetune_arguments(toy, output_dir: Path, **overrides) -> list[str]:
    options = {
        "model_name_or_path": toy["base"],
        "clips_dir": toy["clips"],
        "train_csv": toy["csv"],
        "output_dir": output_dir,
        "max_steps": 10,
        "per_device_train_batch_size": 4,
        "learning_rate": 3e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "seed": 0,
        "disable_tqdm": True,
        **overrides,
    }
    return [item for name, value in options.items() for item in (f"--{name}", str(value))]


def run_launcher(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=launcher_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-6000:]
    return result


def logged_losses(output_dir: Path) -> list[float]:
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def assert_learned(output_dir: Path, world_size: int) -> None:
    losses = logged_losses(output_dir)
    assert len(losses) >= 8, losses
    # ln 2 at the start (two balanced classes); a learnable task goes well below it within a few steps
    assert losses[0] == pytest.approx(0.69, abs=0.1), losses
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses
    results = json.loads((output_dir / "all_results.json").read_text())
    assert results["world_size"] == world_size
    config = json.loads((output_dir / "config.json").read_text())
    assert config["architectures"] == ["TvltForAudioVisualClassification"]
    assert config["id2label"] == {"0": TOY_CLASSES[0], "1": TOY_CLASSES[1]}
    assert config["problem_type"] == "single_label_classification"
    assert (output_dir / "processor_config.json").exists()


@pytest.fixture(scope="module")
def single_process_run(toy):
    output_dir = toy["root"] / "single"
    run_launcher([sys.executable, str(FINETUNE), *finetune_arguments(toy, output_dir)], cwd=toy["root"])
    return output_dir


def test_single_process_training_lowers_the_loss(single_process_run):
    assert_learned(single_process_run, world_size=1)


def test_the_result_classifies_new_clips_with_remote_code_only(single_process_run, toy, tmp_path):
    """Load the saved folder in an interpreter where `tvlt` cannot be imported, through the pipeline."""
    new_clips = {name: str(toy_clip(tmp_path / f"new_{name}.mp4", name, seed=999)) for name in TOY_CLASSES}
    job = {
        "classify": {
            name: {"repo": str(single_process_run), "inputs": clip, "kwargs": {"top_k": 1}}
            for name, clip in new_clips.items()
        },
        "output": str(tmp_path / "output.json"),
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    run_without_package("pipeline_client.py", tmp_path / "job.json", tmp_path)
    output = json.loads(Path(job["output"]).read_text())
    assert output["tvlt_modules"] == []
    assert all(path.startswith("transformers_modules.") for path in output["classes"].values())
    for name in TOY_CLASSES:
        assert output["classify"][name][0]["label"] == name


@pytest.mark.slow
def test_two_processes_with_torchrun(toy):
    output_dir = toy["root"] / "torchrun"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    arguments = finetune_arguments(toy, output_dir, per_device_train_batch_size=2)
    run_launcher([torchrun, "--nproc_per_node", "2", str(FINETUNE), *arguments], cwd=toy["root"])
    assert_learned(output_dir, world_size=2)


@pytest.mark.slow
def test_two_processes_with_accelerate_launch(toy):
    output_dir = toy["root"] / "accelerate"
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    # `--multi_gpu` is accelerate's multi-process launcher; without GPUs the script trains on CPU processes over gloo
    launcher = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launcher += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    arguments = finetune_arguments(toy, output_dir, per_device_train_batch_size=2)
    run_launcher([*launcher, str(FINETUNE), *arguments], cwd=toy["root"])
    assert_learned(output_dir, world_size=2)


@pytest.mark.parametrize(
    "problem_type, header, rows, expected_labels",
    [
        (
            "multi_label_classification",
            "video,label",
            [("bright_high_0.mp4", "light|high"), ("dark_low_0.mp4", "low"), ("dark_low_1.mp4", "")],
            {"0": "high", "1": "light", "2": "low"},
        ),
        (
            "regression",
            "video,valence,arousal",
            [("bright_high_0.mp4", "1.5,0.2"), ("dark_low_0.mp4", "-1,0.7")],
            {"0": "valence", "1": "arousal"},
        ),  # fmt: skip
    ],
)
def test_multi_label_and_regression_heads_train_and_save(toy, tmp_path, problem_type, header, rows, expected_labels):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join([header] + [f"{video},{labels}" for video, labels in rows]) + "\n")
    label_column = "valence,arousal" if problem_type == "regression" else "label"
    arguments = finetune_arguments(
        toy,
        tmp_path / "out",
        train_csv=csv_path,
        eval_csv=csv_path,
        problem_type=problem_type,
        label_column=label_column,
        max_steps=2,
        per_device_train_batch_size=2,
    )
    metrics = load_example().main(arguments)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["problem_type"] == problem_type
    assert config["id2label"] == expected_labels
    assert ("eval_mse" if problem_type == "regression" else "eval_f1_micro") in metrics


@pytest.mark.parametrize(
    "csv_text, problem_type, message",
    [
        ("clip,label\na.mp4,x\n", "single_label_classification", "needs a `video` column"),
        ("video,label\n", "single_label_classification", "has no rows"),
        ("video,label\nbright_high_0.mp4,\n", "single_label_classification", "no class names"),
        ("video,score\nbright_high_0.mp4,high\n", "regression", "must hold numbers"),
        (
            "video,label,start\nbright_high_0.mp4,a,soon\n",
            "single_label_classification",
            "must be a number of seconds",
        ),
        ("video,label\nmissing.mp4,a\n", "single_label_classification", "no such video file"),
    ],
)
def test_bad_label_files_are_refused_before_training(toy, tmp_path, csv_text, problem_type, message):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(csv_text)
    label_column = "score" if problem_type == "regression" else "label"
    arguments = finetune_arguments(
        toy, tmp_path / "out", train_csv=csv_path, problem_type=problem_type, label_column=label_column
    )
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_example().main(arguments)
    assert not (tmp_path / "out" / "config.json").exists()


def test_the_script_reports_bad_input_in_one_line(toy, tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("video,label\nmissing.mp4,a\n")
    result = subprocess.run(
        [sys.executable, str(FINETUNE), *finetune_arguments(toy, tmp_path / "out", train_csv=csv_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("finetune.py: error: ")
    assert "Traceback" not in result.stderr
