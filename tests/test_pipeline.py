"""The `audio-visual-classification` pipeline: inputs, outputs per head type, batching, errors, and remote code.

Tiny random checkpoints and synthetic clips; the real clips of ../shared/samples run in the `media` tests. The
remote-code proof runs the pipeline in a clean interpreter where `tvlt` cannot be imported (`pipeline_client.py`).
"""

import json
import os
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from _av_toys import TINY_PROCESSOR, moving_square_frames, save_tiny_checkpoint, tone, write_clip
from conftest import SAMPLES, requires_path, run_without_package
from transformers import pipeline

from tvlt import TvltAudioVisualClassificationPipeline, TvltForAudioVisualClassification
from tvlt.inputs_tvlt import MissingAudioError
from tvlt.media_tvlt import load_audio, read_video
from tvlt.remote_code_tvlt import CUSTOM_PIPELINES


TASK = "audio-visual-classification"
HOWTO = SAMPLES / "howto100m" / "mg7Q4o9bNN0.mp4"
MOSEI_VIDEO = SAMPLES / "mosei" / "K0m1tO3Ybyc_2.mp4"
MOSEI_AUDIO = SAMPLES / "mosei" / "K0m1tO3Ybyc_2.wav"
requires_samples = requires_path(SAMPLES, "the real sample clips")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    files = {
        # 1 s: 8 frames (4 sampled), more audio than the tiny model's 0.75 s window
        "clip": write_clip(folder / "clip.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0)),
        # 0.25 s: 2 frames and 0.25 s of audio, so that batching it with `clip` pads frames and spectrogram
        "short": write_clip(folder / "short.mp4", moving_square_frames(2, seed=1), waveform=tone(880.0, 0.25, seed=1)),
        "silent": write_clip(folder / "silent.mp4", moving_square_frames(8, seed=2)),
        "still": folder / "still.png",
        "speech": folder / "speech.wav",
    }
    PIL.Image.fromarray(moving_square_frames(1)[0]).save(files["still"])
    import soundfile

    soundfile.write(files["speech"], tone(300.0, 0.6, sampling_rate=16000, seed=3), 16000)
    return files


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        kind: save_tiny_checkpoint(root / kind, kind)
        for kind in ("classification", "multi_label", "regression", "pretraining")
    }


@pytest.fixture(scope="module")
def classifier(checkpoints):
    return pipeline(
        TASK,
        model=str(checkpoints["classification"]),
        pipeline_class=TvltAudioVisualClassificationPipeline,
        device="cpu",
    )


def logits_of(classifier, inputs) -> torch.Tensor:
    """The model's logits for one clip, computed without the pipeline (its preparer and the model)."""
    from tvlt.inputs_tvlt import AudioVisualClip

    prepared = classifier.clip_preparer(AudioVisualClip.from_input(inputs))
    with torch.no_grad():
        return classifier.model(**prepared).logits[0]


# -- outputs ----------------------------------------------------------------------------------------------------------


def test_single_label_scores_are_softmax_probabilities_best_first(classifier, media):
    everything = classifier(str(media["clip"]), top_k=None)
    probabilities = logits_of(classifier, str(media["clip"])).softmax(-1)
    expected = sorted(
        ({"label": classifier.model.config.id2label[i], "score": p} for i, p in enumerate(probabilities.tolist())),
        key=lambda item: -item["score"],
    )
    assert [item["label"] for item in everything] == [item["label"] for item in expected]
    np.testing.assert_allclose([item["score"] for item in everything], [item["score"] for item in expected], atol=1e-6)
    assert sum(item["score"] for item in everything) == pytest.approx(1.0, abs=1e-5)
    assert classifier(str(media["clip"]), top_k=2) == everything[:2]


def test_default_top_k_is_five_capped_by_the_number_of_labels(checkpoints, media):
    many = save_tiny_checkpoint(
        checkpoints["classification"].parent / "seven",
        "classification",
        num_labels=7,
        id2label={i: f"class_{i}" for i in range(7)},
    )
    seven = pipeline(TASK, model=str(many), pipeline_class=TvltAudioVisualClassificationPipeline, device="cpu")
    assert len(seven(str(media["clip"]))) == 5
    assert len(seven(str(media["clip"]), top_k=None)) == 7


def test_multi_label_scores_are_independent_sigmoids(checkpoints, media):
    tagger = pipeline(
        TASK, model=str(checkpoints["multi_label"]), pipeline_class=TvltAudioVisualClassificationPipeline, device="cpu"
    )
    result = tagger(str(media["clip"]), top_k=None)
    expected = dict(
        zip(["happy", "sad", "angry"], logits_of(tagger, str(media["clip"])).sigmoid().tolist(), strict=True)
    )
    assert {item["label"]: pytest.approx(item["score"], abs=1e-6) for item in result} == expected
    assert [item["score"] for item in result] == sorted((item["score"] for item in result), reverse=True)
    assert sum(item["score"] for item in result) != pytest.approx(1.0, abs=1e-3)  # not a softmax


def test_regression_returns_the_raw_value_of_each_output(checkpoints, media):
    regressor = pipeline(
        TASK, model=str(checkpoints["regression"]), pipeline_class=TvltAudioVisualClassificationPipeline, device="cpu"
    )
    result = regressor(str(media["clip"]))
    raw = logits_of(regressor, str(media["clip"]))
    assert result == [{"label": "sentiment", "score": pytest.approx(raw[0].item(), abs=1e-6)}]


def test_function_to_apply_overrides_the_head_default(classifier, media):
    raw = classifier(str(media["clip"]), top_k=None, function_to_apply="none")
    logits = logits_of(classifier, str(media["clip"]))
    assert sorted(item["score"] for item in raw) == pytest.approx(sorted(logits.tolist()), abs=1e-6)
    sigmoid = classifier(str(media["clip"]), top_k=None, function_to_apply="sigmoid")
    assert sorted(item["score"] for item in sigmoid) == pytest.approx(sorted(logits.sigmoid().tolist()), abs=1e-6)


# -- inputs -----------------------------------------------------------------------------------------------------------


def test_a_path_a_dict_and_decoded_arrays_give_the_same_answer(classifier, media):
    path = str(media["clip"])
    from_path = classifier(path, top_k=None)
    assert classifier({"video": path}, top_k=None) == from_path
    assert classifier({"video": Path(path), "audio": Path(path)}, top_k=None) == from_path

    window = classifier.clip_preparer.max_audio_seconds
    frames = read_video(path, classifier.clip_preparer.num_frames, end=window).frames
    waveform, rate = load_audio(path, end=window)
    from_arrays = classifier({"video": frames, "audio": waveform, "sampling_rate": rate}, top_k=None)
    assert [item["label"] for item in from_arrays] == [item["label"] for item in from_path]
    np.testing.assert_allclose([i["score"] for i in from_arrays], [i["score"] for i in from_path], atol=1e-6)
    # frames as a list of images, audio as a tensor
    images = [PIL.Image.fromarray(frame) for frame in frames]
    from_images = classifier({"video": images, "audio": torch.from_numpy(waveform), "sampling_rate": rate}, top_k=None)
    np.testing.assert_allclose([i["score"] for i in from_images], [i["score"] for i in from_path], atol=1e-6)


def test_a_separate_audio_file_is_resampled_and_replaces_the_track(classifier, media):
    with_speech = classifier({"video": str(media["silent"]), "audio": str(media["speech"])}, top_k=None)
    waveform, rate = load_audio(media["speech"])
    assert rate == 16000
    from_waveform = classifier({"video": str(media["silent"]), "audio": waveform, "sampling_rate": 16000}, top_k=None)
    np.testing.assert_allclose([i["score"] for i in from_waveform], [i["score"] for i in with_speech], atol=1e-6)
    own_track = classifier(str(media["clip"]), top_k=None)
    replaced = classifier({"video": str(media["clip"]), "audio": str(media["speech"])}, top_k=None)
    assert [i["score"] for i in replaced] != pytest.approx([i["score"] for i in own_track], abs=1e-7)


def test_the_window_picks_what_is_read(classifier, media):
    path = str(media["clip"])
    late = classifier(path, start=0.5, top_k=None)
    assert [i["score"] for i in late] != pytest.approx([i["score"] for i in classifier(path, top_k=None)], abs=1e-7)
    # a per-clip window wins over the call's
    assert classifier({"video": path, "start": 0.5}, top_k=None) == late
    assert classifier({"video": path, "start": 0.5}, start=0.0, top_k=None) == late
    prepared = classifier.preprocess(path, start=0.5, end=0.75)
    frames = read_video(path, TINY_PROCESSOR["num_frames"], start=0.5, end=0.75).frames
    assert prepared["pixel_values"].shape[1] == len(frames) == 2


def test_a_list_is_batched_with_padding_and_matches_one_by_one(classifier, media):
    clips = [str(media["clip"]), str(media["short"]), {"video": str(media["silent"]), "audio": str(media["speech"])}]
    one_by_one = [classifier(clip, top_k=None) for clip in clips]
    for batch_size in (1, 2, 3):
        batched = classifier(clips, batch_size=batch_size, top_k=None)
        assert len(batched) == len(clips)
        for got, expected in zip(batched, one_by_one, strict=True):
            assert [i["label"] for i in got] == [i["label"] for i in expected]
            np.testing.assert_allclose([i["score"] for i in got], [i["score"] for i in expected], atol=1e-5)
    # the short clip really is padded in a batch with the long one
    short, long = classifier.preprocess(clips[1]), classifier.preprocess(clips[0])
    assert short["pixel_values"].shape[1] < long["pixel_values"].shape[1]
    assert short["audio_values"].shape[2] < long["audio_values"].shape[2]


# -- errors -----------------------------------------------------------------------------------------------------------


def test_a_pre_training_checkpoint_is_refused_with_a_pointer_to_matching(checkpoints):
    with pytest.raises(ValueError, match=r"TvltForPreTraining.*no trained classifier.*TvltAudioVisualMatcher"):
        pipeline(TASK, model=str(checkpoints["pretraining"]), pipeline_class=TvltAudioVisualClassificationPipeline)


def test_the_processor_may_be_given_as_its_two_parts(classifier, media):
    parts = TvltAudioVisualClassificationPipeline(
        model=classifier.model,
        image_processor=classifier.processor.image_processor,
        feature_extractor=classifier.processor.feature_extractor,
        device="cpu",
    )
    assert parts(str(media["clip"])) == classifier(str(media["clip"]))
    with pytest.raises(ValueError, match="needs the TVLT processor"):
        TvltAudioVisualClassificationPipeline(model=classifier.model, device="cpu")


def test_a_model_fine_tuned_in_memory_from_a_pre_training_checkpoint_is_accepted(checkpoints, classifier, media):
    model = TvltForAudioVisualClassification.from_pretrained(
        checkpoints["pretraining"], num_labels=2, id2label={0: "no", 1: "yes"}
    )
    assert model.config.architectures == ["TvltForPreTraining"]
    tuned = TvltAudioVisualClassificationPipeline(model=model, processor=classifier.processor, device="cpu")
    assert {item["label"] for item in tuned(str(media["clip"]))} == {"no", "yes"}


@pytest.mark.parametrize(
    "make_input, error, message",
    [
        (lambda m: str(m["silent"]), MissingAudioError, "has no audio track"),
        (lambda m: str(m["still"].parent), IsADirectoryError, "is a directory"),
        (lambda m: str(m["still"]), ValueError, r"still image \(PNG\), not a video"),
        (lambda m: str(m["still"].parent / "missing.mp4"), FileNotFoundError, "no such video file"),
        (lambda m: {"video": str(m["clip"]), "sound": "x.wav"}, ValueError, r"unknown key\(s\) \['sound'\]"),
        (lambda m: {"audio": str(m["speech"])}, ValueError, "needs a `video`"),
        (lambda m: {"video": str(m["clip"]), "audio": np.zeros(8000, np.float32)}, ValueError, "sampling_rate"),
        (lambda m: {"video": np.zeros((4, 32, 32, 3), np.uint8)}, MissingAudioError, "needs its audio"),
        (lambda m: {"video": np.zeros((32, 32, 3), np.uint8), "audio": str(m["speech"])}, ValueError, "must be 4-D"),
        (lambda m: 3, TypeError, "must be a video file path or a dict"),
        (lambda m: {"video": str(m["clip"]), "start": 2, "end": 1}, ValueError, "must be after `start`"),
    ],
)
def test_bad_inputs_raise_a_clear_error(classifier, media, make_input, error, message):
    with pytest.raises(error, match=message):
        classifier(make_input(media))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_k=0), "`top_k` must be a positive int or None"),
        (dict(function_to_apply="relu"), "`function_to_apply` must be one of"),
        (dict(start=-1), r"`start` must be a finite number of seconds from 0 to 10,000,000 \(116 days\), got -1"),
        # 4.40.2-era code paths overflowed, or blamed an `end` that was never given
        (dict(start=float("inf")), r"`start` must be a finite number of seconds .*, got inf"),
        (dict(end=float("inf")), r"`end` must be a finite number of seconds .*, got inf"),
        (dict(start=1e20), r"`start` must be a finite number of seconds .*, got 1e\+20"),
        (dict(start=float("nan")), r"`start` must be a finite number of seconds .*, got nan"),
        (dict(topk=3), r"unexpected parameter\(s\) \['topk'\]"),
    ],
)
def test_bad_parameters_raise_a_clear_error(classifier, media, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        classifier(str(media["clip"]), **kwargs)


# -- registration and remote code -------------------------------------------------------------------------------------


def test_saved_repos_name_the_pipeline_in_custom_pipelines(checkpoints):
    config = json.loads((checkpoints["classification"] / "config.json").read_text())
    entry = config["custom_pipelines"][TASK]
    assert entry == CUSTOM_PIPELINES[TASK]
    module, class_name = entry["impl"].split(".")
    assert class_name == TvltAudioVisualClassificationPipeline.__name__
    assert {f"{module}.py", "inputs_tvlt.py", "retrieval_tvlt.py"} <= {
        p.name for p in checkpoints["classification"].iterdir()
    }


def test_the_registered_task_serves_checkpoints_without_custom_pipelines(checkpoints, media, tmp_path):
    # a 4.40.2-style folder: no auto_map, no custom_pipelines, no code files
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("model.safetensors", "processor_config.json"):
        (legacy / name).write_bytes((checkpoints["classification"] / name).read_bytes())
    config = json.loads((checkpoints["classification"] / "config.json").read_text())
    config.pop("auto_map", None)
    config.pop("custom_pipelines", None)
    (legacy / "config.json").write_text(json.dumps(config))
    processor_config = json.loads((legacy / "processor_config.json").read_text())
    for section in [processor_config, *(v for v in processor_config.values() if isinstance(v, dict))]:
        section.pop("auto_map", None)
    (legacy / "processor_config.json").write_text(json.dumps(processor_config))

    registered = pipeline(TASK, model=str(legacy), device="cpu")
    assert type(registered) is TvltAudioVisualClassificationPipeline
    reference = pipeline(
        TASK,
        model=str(checkpoints["classification"]),
        pipeline_class=TvltAudioVisualClassificationPipeline,
        device="cpu",
    )
    assert registered(str(media["clip"])) == reference(str(media["clip"]))


def test_trust_remote_code_loads_the_repos_own_pipeline_class(checkpoints, classifier, media):
    remote = pipeline(TASK, model=str(checkpoints["classification"]), trust_remote_code=True, device="cpu")
    assert type(remote).__module__.startswith("transformers_modules.")
    assert type(remote).__name__ == "TvltAudioVisualClassificationPipeline"
    assert remote(str(media["clip"])) == classifier(str(media["clip"]))


def test_pipeline_save_pretrained_writes_a_repo_that_loads_again(classifier, media, tmp_path):
    classifier.save_pretrained(tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["custom_pipelines"][TASK]["impl"] == CUSTOM_PIPELINES[TASK]["impl"]
    again = pipeline(TASK, model=str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    assert again(str(media["clip"])) == classifier(str(media["clip"]))


def run_isolated(job: dict, root: Path) -> dict:
    """Run `pipeline_client.py` where `tvlt` cannot be imported (see `conftest.run_without_package`)."""
    job = {**job, "output": str(root / "output.json")}
    (root / "job.json").write_text(json.dumps(job))
    run_without_package("pipeline_client.py", root / "job.json", root)
    return json.loads(Path(job["output"]).read_text())


@pytest.fixture(scope="module")
def isolated_run(checkpoints, media, tmp_path_factory):
    repo, pretraining = str(checkpoints["classification"]), str(checkpoints["pretraining"])
    clips = [str(media["clip"]), {"video": str(media["silent"]), "audio": str(media["speech"])}]
    job = {
        "classify": {
            "path": {"repo": repo, "inputs": clips[0], "kwargs": {"top_k": None}},
            "batch": {"repo": repo, "inputs": clips + [str(media["short"])], "kwargs": {"batch_size": 2, "top_k": 2}},
            "chunked": {"repo": repo, "inputs": clips[0], "kwargs": {"chunk_length_s": 0.5, "batch_size": 2}},
        },
        "match": {
            "matrix": {
                "repo": pretraining,
                "videos": [str(media["clip"]), str(media["short"])],
                "audios": [str(media["clip"]), str(media["speech"])],
            }
        },
    }
    if SAMPLES.exists():
        job["classify"]["howto"] = {"repo": repo, "inputs": str(HOWTO)}
        job["classify"]["mosei"] = {"repo": repo, "inputs": {"video": str(MOSEI_VIDEO), "audio": str(MOSEI_AUDIO)}}
    return job, run_isolated(job, tmp_path_factory.mktemp("isolated"))


def test_without_the_package_the_pipeline_and_matcher_run_from_the_repo_code(isolated_run, classifier):
    job, remote = isolated_run
    assert remote["tvlt_modules"] == []
    for name, class_path in remote["classes"].items():
        assert class_path.startswith("transformers_modules."), (name, class_path)
    torch.set_num_threads(1)
    try:
        for name, case in job["classify"].items():
            if name == "chunked":
                continue  # test_without_the_package_long_clips_are_read_in_windows
            expected = classifier(case["inputs"], **case.get("kwargs", {}))
            got = remote["classify"][name]
            flat_got = got if isinstance(got[0], dict) else [item for items in got for item in items]
            flat_expected = (
                expected if isinstance(expected[0], dict) else [item for items in expected for item in items]
            )
            assert [item["label"] for item in flat_got] == [item["label"] for item in flat_expected], name
            np.testing.assert_allclose([i["score"] for i in flat_got], [i["score"] for i in flat_expected], atol=1e-5)
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))


def test_without_the_package_long_clips_are_read_in_windows(isolated_run, classifier):
    job, remote = isolated_run
    case, got = job["classify"]["chunked"], remote["classify"]["chunked"]
    expected = classifier(case["inputs"], **case["kwargs"])
    assert [(w["start"], w["end"]) for w in got["windows"]] == [(w["start"], w["end"]) for w in expected["windows"]]
    for got_window, expected_window in zip(got["windows"] + [got], expected["windows"] + [expected], strict=True):
        key = "predictions" if "predictions" in got_window else "aggregate"
        assert [i["label"] for i in got_window[key]] == [i["label"] for i in expected_window[key]]
        np.testing.assert_allclose(
            [i["score"] for i in got_window[key]], [i["score"] for i in expected_window[key]], atol=1e-5
        )


def test_without_the_package_the_matcher_scores_like_the_package(isolated_run, checkpoints):
    from tvlt.retrieval_tvlt import TvltAudioVisualMatcher

    job, remote = isolated_run
    case = job["match"]["matrix"]
    expected = TvltAudioVisualMatcher.from_pretrained(case["repo"]).score_matrix(case["videos"], case["audios"])
    np.testing.assert_allclose(remote["match"]["matrix"], expected.numpy(), atol=1e-5)


@pytest.mark.media
@requires_samples
def test_real_clips_are_classified_without_the_package(isolated_run):
    _, remote = isolated_run
    for name in ("howto", "mosei"):
        result = remote["classify"][name]
        assert [item["label"] for item in result] and all(0 <= item["score"] <= 1 for item in result), name
        assert sum(item["score"] for item in result) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.media
@requires_samples
def test_the_howto100m_clip_is_read_in_the_window_only(classifier):
    # the clip is 7 minutes long (its data ends after ~58 s); the tiny model takes 0.75 s of audio
    prepared = classifier.preprocess(str(HOWTO))
    assert prepared["pixel_values"].shape[1] == TINY_PROCESSOR["num_frames"]
    assert prepared["audio_values"].shape[2] <= classifier.model.config.spectrogram_length
    later = classifier(str(HOWTO), start=42.0, end=48.0)
    assert later != classifier(str(HOWTO))
