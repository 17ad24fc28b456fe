"""`tvlt predict`: the offline first run of the README, classification and matching output, and bad input."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from _av_toys import load_classifier, moving_square_frames, tone, write_clip
from conftest import REPO_ROOT, SAMPLES, offline_env, requires_path

from tvlt.cli import main
from tvlt.retrieval_tvlt import TvltAudioVisualMatcher


DEMO_CLIP = REPO_ROOT / "examples" / "assets" / "talking_face.mp4"
MOSEI_VIDEO = SAMPLES / "mosei" / "K0m1tO3Ybyc_2.mp4"
MOSEI_AUDIO = SAMPLES / "mosei" / "K0m1tO3Ybyc_2.wav"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    still = folder / "still.png"
    PIL.Image.fromarray(moving_square_frames(1)[0]).save(still)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    return {
        "clip": write_clip(folder / "clip.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0)),
        "silent": write_clip(folder / "silent.mp4", moving_square_frames(8, seed=2)),
        "still": still,
        "corrupt": corrupt,
        "folder": folder,
    }


def tvlt_command() -> list[str]:
    script = Path(sys.executable).with_name("tvlt")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tvlt"]


def test_the_offline_first_run_predicts_for_the_bundled_clip(tmp_path):
    """The README's quickstart, on a machine without network: make the demo checkpoint, predict for the demo clip."""
    env = offline_env(tmp_path)
    demo = tmp_path / "tvlt-tiny-classifier"
    made = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "make_demo_checkpoint.py"), str(demo)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert "RANDOM weights" in made.stdout
    assert "random" in (demo / "README.md").read_text()

    predicted = subprocess.run(
        [*tvlt_command(), "predict", "examples/assets/talking_face.mp4", "--model", str(demo)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = predicted.stdout.strip().splitlines()
    assert lines[0] == "examples/assets/talking_face.mp4 + its own audio track"
    assert "NOTE: random weights" in predicted.stdout
    assert lines[-6] == "label probabilities (multi-label, independent):"
    labels = [line.split()[0] for line in lines[-5:]]
    assert set(labels) <= {"happy", "sad", "angry", "fear", "disgust", "surprise"} and len(set(labels)) == 5
    assert "Traceback" not in predicted.stderr


def test_the_bundled_clip_is_small_and_has_video_and_audio():
    import av

    assert DEMO_CLIP.stat().st_size < 64 * 1024
    with av.open(str(DEMO_CLIP)) as container:
        assert container.streams.video and container.streams.audio
        assert container.streams.audio[0].rate == 44100


def test_json_output_of_a_classifier_is_the_pipeline_output(repos, media, capsys):
    assert (
        main(["predict", str(media["clip"]), "--model", str(repos["classification"]), "--json", "--top-k", "2"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    classifier = load_classifier(repos["classification"])
    expected = classifier(str(media["clip"]), top_k=2)
    assert result["task"] == "classification" and result["problem_type"] == "single_label_classification"
    assert [p["label"] for p in result["predictions"]] == [p["label"] for p in expected]
    assert [p["score"] for p in result["predictions"]] == pytest.approx([p["score"] for p in expected], abs=1e-6)
    assert result["audio"] is None and result["video"] == str(media["clip"])


def test_readable_output_of_a_regression_head(repos, media, capsys):
    assert main(["predict", str(media["clip"]), "--model", str(repos["regression"])]) == 0
    out = capsys.readouterr().out
    assert "predicted values:" in out
    assert out.strip().splitlines()[-1].split()[0] == "sentiment"


def test_a_pre_training_checkpoint_gives_the_matching_score(repos, media, capsys):
    assert main(["predict", str(media["clip"]), "--model", str(repos["pretraining"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    expected = TvltAudioVisualMatcher.from_pretrained(repos["pretraining"]).score(str(media["clip"]))
    assert result["task"] == "matching"
    assert result["match_score"] == pytest.approx(expected, abs=1e-6)
    assert main(["predict", str(media["clip"]), "--model", str(repos["pretraining"])]) == 0
    assert "audio-video match:" in capsys.readouterr().out


def test_a_separate_audio_file_and_a_window(repos, media, capsys):
    arguments = [
        "predict",
        str(media["silent"]),
        "--audio",
        str(media["clip"]),
        "--model",
        str(repos["classification"]),
    ]
    assert main([*arguments, "--json"]) == 0
    with_audio = json.loads(capsys.readouterr().out)
    assert with_audio["audio"] == str(media["clip"])
    assert main([*arguments, "--json", "--start", "0.25", "--end", "1.0"]) == 0
    windowed = json.loads(capsys.readouterr().out)
    assert windowed["predictions"] != with_audio["predictions"]


@pytest.mark.media
@requires_path(SAMPLES, "the real sample clips")
def test_the_mosei_clip_with_its_separate_wav(repos, capsys):
    assert main(["predict", str(MOSEI_VIDEO), "--model", str(repos["classification"])]) == 2
    assert "has no audio track; give the audio with --audio FILE" in capsys.readouterr().err
    assert (
        main(["predict", str(MOSEI_VIDEO), "--audio", str(MOSEI_AUDIO), "--model", str(repos["classification"])]) == 0
    )
    assert "label probabilities:" in capsys.readouterr().out


BASE_MODEL_CONFIG = {"model_type": "tvlt", "architectures": ["TvltModel"]}


def write_config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda m, r: [str(m["folder"]), "--model", r], "is a directory; expected a video file"),
        (lambda m, r: [str(m["still"]), "--model", r], r"is a still image \(PNG\), not a video"),
        (lambda m, r: [str(m["silent"]), "--model", r], "has no audio track; give the audio with --audio FILE"),
        (lambda m, r: [str(m["folder"] / "missing.mp4"), "--model", r], "no such video file"),
        (lambda m, r: [str(m["corrupt"]), "--model", r], "cannot be opened as a media file"),
        (
            lambda m, r: [str(m["clip"]), "--audio", str(m["folder"]), "--model", r],
            "is a directory; expected an audio",
        ),
        (lambda m, r: [str(m["clip"]), "--audio", str(m["silent"]), "--model", r], "has no audio track"),
        (lambda m, r: [str(m["clip"]), "--model", r, "--start", "2", "--end", "1"], r"--end \(1.0\) must be after"),
        (lambda m, r: [str(m["clip"]), "--model", "./no/such/checkpoint"], "no such checkpoint folder"),
        (lambda m, r: [str(m["clip"]), "--model", str(m["still"])], "is a file; expected a checkpoint folder"),
        (lambda m, r: [str(m["clip"]), "--model", str(m["folder"])], "has no config.json"),
        # offline (as the tests run): the Hub cannot be reached; online: the Hub has no such repo
        (
            lambda m, r: [str(m["clip"]), "--model", "someone/not-cached"],
            "not in the local cache|cannot load its config",
        ),
        (
            lambda m, r: [str(m["clip"]), "--model", str(write_config(m["folder"] / "bert", {"model_type": "bert"}))],
            "is not a TVLT checkpoint",
        ),
        (
            lambda m, r: [str(m["clip"]), "--model", str(write_config(m["folder"] / "base", BASE_MODEL_CONFIG))],
            "has neither a classifier nor the pre-training heads",
        ),
        (lambda m, r: [str(m["clip"]), "--model", r, "--device", "gpu"], "--device gpu: "),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_code_2(repos, media, capsys, make_arguments, message):
    assert main(["predict", *make_arguments(media, str(repos["classification"]))]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tvlt predict: error: "), captured.err
    assert re.search(message, lines[0]), lines[0]
    assert captured.out == ""


@pytest.mark.parametrize(
    "options, message",
    [
        (["--top-k", "0"], "argument --top-k: expected a positive integer, got '0'"),
        (["--end", "inf"], "argument --end: expected a finite number of seconds, got 'inf'"),
        (["--start", "inf"], "argument --start: expected a finite number of seconds, got 'inf'"),
        (["--start", "nan"], "argument --start: expected a finite number of seconds, got 'nan'"),
        (["--start", "-1"], "argument --start: expected a number of seconds from 0 to 10,000,000 (116 days)"),
        (["--start", "1e20"], "argument --start: expected a number of seconds from 0 to 10,000,000 (116 days)"),
        (["--end", "1e8", "--start", "2"], "argument --end: expected a number of seconds from 0 to 10,000,000"),
    ],
)
def test_bad_option_values_are_refused_by_the_parser_in_one_line(repos, media, capsys, options, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(media["clip"]), "--model", str(repos["classification"]), *options])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tvlt predict: error: {message}"), lines


def test_an_end_at_zero_is_refused_without_naming_a_start_that_was_not_given(repos, media, capsys):
    assert main(["predict", str(media["clip"]), "--model", str(repos["classification"]), "--end", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "tvlt predict: error: --end must be greater than 0 (the window starts at 0 s)."
    )


def test_the_command_line_and_the_library_bound_windows_alike():
    from tvlt.commands._argtypes import MAX_SECONDS
    from tvlt.media_tvlt import MAX_WINDOW_SECONDS

    assert MAX_SECONDS == MAX_WINDOW_SECONDS


def test_the_command_line_and_the_library_spell_auto_alike():
    """`--chunk-length auto` is passed to the pipeline as it is: `_timeline.AUTO` restates the library's word."""
    from tvlt.commands._timeline import AUTO
    from tvlt.inputs_tvlt import CHUNK_LENGTH_AUTO

    assert AUTO == CHUNK_LENGTH_AUTO
