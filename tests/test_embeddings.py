"""Clip embeddings: `TvltModel.get_audio_visual_features` / `get_video_features` / `get_audio_features` (what each
pooling returns, padding never counted, the same vector alone and in a padded batch), and the remote-code embedder
(`embedding_tvlt.TvltAudioVisualEmbedder`) in an interpreter where `tvlt` cannot be imported."""

import json

import numpy as np
import pytest
import soundfile
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tone, write_clip, write_edge_clips
from conftest import run_without_package, tiny_config

from tvlt import (
    TvltAudioVisualEmbedder,
    TvltDataCollator,
    TvltForAudioVisualClassification,
    TvltForPreTraining,
    TvltModel,
)
from tvlt.embedding_tvlt import MODALITIES
from tvlt.inputs_tvlt import AudioVisualClip, MissingAudioError


POOLINGS = ("cls", "mean")
THREADS = torch.get_num_threads()


def clip_inputs(config, num_frames: int, time: int, seed: int) -> dict:
    """One clip as the processor gives it: a batch of 1 with its (all-real) masks."""
    g = torch.Generator().manual_seed(seed)
    audio_patches = (time // config.audio_patch_size[0]) * config.num_freq_patches
    return {
        "pixel_values": torch.randn(1, num_frames, config.num_image_channels, *config.frame_size, generator=g),
        "pixel_mask": torch.ones(1, num_frames * config.num_patches_per_image),
        "audio_values": torch.rand(1, config.num_audio_channels, time, config.frequency_length, generator=g) * 2 - 1,
        "audio_mask": torch.ones(1, audio_patches),
    }


def features(model, inputs: dict, modality: str, pooling: str) -> torch.Tensor:
    with torch.no_grad():
        if modality == "video":
            return model.get_video_features(inputs["pixel_values"], inputs.get("pixel_mask"), pooling=pooling)
        if modality == "audio":
            return model.get_audio_features(inputs["audio_values"], inputs.get("audio_mask"), pooling=pooling)
        return model.get_audio_visual_features(**inputs, pooling=pooling)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TvltModel(tiny_config()).eval()


def test_cls_pooling_is_the_token_the_classifier_reads():
    for use_pooler in (False, True):  # 4.40.2's head, and the original checkpoints' head with its Pooler
        torch.manual_seed(0)
        classifier = TvltForAudioVisualClassification(tiny_config(use_classifier_pooler=use_pooler)).eval()
        inputs = clip_inputs(classifier.config, 4, 64, seed=1)
        with torch.no_grad():
            logits = classifier(**inputs).logits
            embedding = classifier.tvlt.get_audio_visual_features(**inputs)
            hidden = classifier.tvlt(**inputs).last_hidden_state
            assert torch.equal(embedding, hidden[:, 0])
            # the head applied to the embedding alone (as a sequence of one token) gives the model's logits
            torch.testing.assert_close(classifier.classifier(embedding[:, None]), logits, rtol=0, atol=1e-6)


def test_mean_pooling_averages_the_real_tokens_without_cls(model):
    config = model.config
    inputs = clip_inputs(config, 4, 64, seed=2)
    inputs["pixel_mask"][0, -config.num_patches_per_image :] = 0  # the last frame is padding
    inputs["audio_mask"][0, -config.num_freq_patches :] = 0  # and so is the last audio time step
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state[0, 1:]
    real = torch.cat([inputs["pixel_mask"][0], inputs["audio_mask"][0]]).bool()
    expected = hidden[real].mean(0, keepdim=True)
    torch.testing.assert_close(features(model, inputs, "audio-visual", "mean"), expected, rtol=0, atol=1e-6)
    video = features(model, inputs, "video", "mean")
    with torch.no_grad():
        video_hidden = model(inputs["pixel_values"], pixel_mask=inputs["pixel_mask"]).last_hidden_state[0, 1:]
    torch.testing.assert_close(
        video, video_hidden[inputs["pixel_mask"][0].bool()].mean(0, keepdim=True), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_clip_gets_the_same_vector_alone_and_in_a_padded_batch(model, modality, pooling, implementation):
    model.set_attn_implementation(implementation)
    config = model.config
    clips = [
        clip_inputs(config, 4, 64, seed=3),
        clip_inputs(config, 2, 24, seed=4),
        clip_inputs(config, 3, 48, seed=5),
    ]
    batch = TvltDataCollator(audio_padding_value=-1.0)(clips)
    assert batch["pixel_mask"].min() == 0 and batch["audio_mask"].min() == 0  # padding is really there
    together = features(model, batch, modality, pooling)
    for index, clip in enumerate(clips):
        alone = features(model, clip, modality, pooling)
        assert (together[index] - alone[0]).abs().max().item() <= 1e-5, (modality, pooling, index)
    assert together.shape == (3, config.hidden_size)
    model.set_attn_implementation("sdpa")


def test_single_modality_features_ignore_the_other_modality(model):
    config = model.config
    a, b = clip_inputs(config, 4, 64, seed=6), clip_inputs(config, 4, 64, seed=7)
    b["pixel_values"] = a["pixel_values"]  # same video, another audio
    for pooling in POOLINGS:
        assert torch.equal(features(model, a, "video", pooling), features(model, b, "video", pooling))
        assert not torch.allclose(features(model, a, "audio", pooling), features(model, b, "audio", pooling))
        assert not torch.allclose(
            features(model, a, "audio-visual", pooling), features(model, b, "audio-visual", pooling)
        )


def test_features_are_reachable_from_every_head_and_keep_gradients():
    config = tiny_config()
    inputs = clip_inputs(config, 4, 64, seed=8)
    for head in (TvltForPreTraining, TvltForAudioVisualClassification):
        torch.manual_seed(0)
        model = head(config).eval()
        embedding = model.tvlt.get_audio_features(inputs["audio_values"], inputs["audio_mask"], pooling="mean")
        assert embedding.shape == (1, config.hidden_size) and embedding.requires_grad


def test_half_precision_models_return_their_dtype_and_agree_with_float32(model):
    inputs = clip_inputs(model.config, 4, 64, seed=9)
    reference = features(model, inputs, "audio-visual", "mean")
    half = TvltModel(model.config).eval()
    half.load_state_dict(model.state_dict())
    half = half.to(torch.bfloat16)
    embedding = features(half, inputs, "audio-visual", "mean")
    assert embedding.dtype == torch.bfloat16
    assert (embedding.float() - reference).abs().max().item() < 0.1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x: m.get_audio_visual_features(x["pixel_values"], x["audio_values"], pooling="max"), "`pooling`"),
        (lambda m, x: m.get_audio_visual_features(x["pixel_values"], None), "needs both"),
        (lambda m, x: m.get_video_features(None), "needs `pixel_values`"),
        (lambda m, x: m.get_audio_features(x["audio_values"], x["pixel_mask"]), "audio_mask"),
    ],
)
def test_bad_arguments_raise_a_clear_error(model, call, message):
    with pytest.raises(ValueError, match=message):
        call(model, clip_inputs(model.config, 4, 64, seed=10))


# -- the embedder (embedding_tvlt.py) ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    return {kind: save_tiny_checkpoint(root / kind, kind) for kind in ("classification", "pretraining")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {
        "long": write_clip(folder / "long.mp4", moving_square_frames(8), waveform=tone(440.0, 1.0)),
        **write_edge_clips(folder, silent_frames=8),
    }


@pytest.fixture(scope="module")
def embedder(repos):
    return TvltAudioVisualEmbedder.from_pretrained(repos["pretraining"])


def test_the_embedder_loads_the_encoder_of_any_checkpoint_quietly(repos, capfd):
    for kind, head in (("classification", TvltForAudioVisualClassification), ("pretraining", TvltForPreTraining)):
        encoder = TvltAudioVisualEmbedder.from_pretrained(repos[kind]).model
        full = head.from_pretrained(repos[kind])
        assert type(encoder) is TvltModel and not encoder.training
        for name, tensor in full.tvlt.state_dict().items():
            assert torch.equal(encoder.state_dict()[name], tensor), name
    assert "UNEXPECTED" not in capfd.readouterr().err  # the heads' weights are left out on purpose


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_embedder_vectors_are_the_model_features_of_the_prepared_clip(embedder, clips, modality, pooling):
    path = str(clips["long"])
    embedding = embedder(path, modality=modality, pooling=pooling)
    assert embedding.shape == (embedder.embedding_size,) and embedding.dtype == torch.float32
    prepared = embedder.clip_preparer(AudioVisualClip.from_input(path))
    torch.testing.assert_close(embedding, features(embedder.model, prepared, modality, pooling)[0], rtol=0, atol=1e-6)


def test_embedder_batches_and_workers_do_not_change_the_vectors(embedder, clips):
    paths = [str(clips["long"]), str(clips["short"]), str(clips["long"])]
    one_by_one = torch.stack([embedder(path, pooling="mean") for path in paths])
    batched = embedder(paths, pooling="mean", batch_size=3)
    in_a_worker = embedder(paths, pooling="mean", batch_size=2, num_workers=1)
    assert batched.shape == (3, embedder.embedding_size)
    assert (batched - one_by_one).abs().max().item() <= 1e-5
    assert (in_a_worker - one_by_one).abs().max().item() <= 1e-5


def test_embedder_single_modality_inputs(embedder, clips):
    speech = str(clips["speech"])
    from_file = embedder(speech, modality="audio")
    waveform, rate = soundfile.read(speech, dtype="float32")
    assert (embedder({"audio": waveform, "sampling_rate": rate}, modality="audio") - from_file).abs().max() < 1e-5
    # a silent video still has frames: its video embedding works, its audio-visual one says what is missing
    assert embedder(str(clips["silent"]), modality="video").shape == (embedder.embedding_size,)
    with pytest.raises(MissingAudioError, match="no audio track"):
        embedder(str(clips["silent"]))
    frames = moving_square_frames(4)
    assert embedder(frames, modality="video").shape == (embedder.embedding_size,)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"modality": "text"}, ValueError, "`modality`"),
        ({"pooling": "max"}, ValueError, "`pooling`"),
        ({"batch_size": 0}, ValueError, "`batch_size`"),
        ({"num_workers": -1}, ValueError, "`num_workers`"),
        ({"start": 2.0, "end": 1.0}, ValueError, "after `start`"),
    ],
)
def test_embedder_bad_arguments(embedder, clips, kwargs, error, message):
    with pytest.raises(error, match=message):
        embedder(str(clips["long"]), **kwargs)


def test_embedder_bad_inputs_name_the_problem(embedder, clips, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        embedder([str(clips["long"]), str(tmp_path / "missing.mp4")])
    with pytest.raises(TypeError, match="sampling_rate"):
        embedder(np.zeros(16000, dtype=np.float32), modality="audio")
    with pytest.raises(ValueError, match="unknown key"):
        embedder({"video": str(clips["long"]), "sound": "x.wav"}, modality="video")
    with pytest.raises(TypeError, match="TVLT model"):
        TvltAudioVisualEmbedder(torch.nn.Linear(2, 2), embedder.processor)


def test_the_embedder_works_with_remote_code_only(repos, clips, embedder, tmp_path):
    """`get_class_from_dynamic_module("embedding_tvlt.TvltAudioVisualEmbedder", repo)` where `tvlt` cannot be
    imported gives the package's vectors."""
    inputs = [str(clips["long"]), {"video": str(clips["short"]), "audio": str(clips["speech"])}]
    cases = {
        "joint-cls": {"repo": str(repos["pretraining"]), "inputs": inputs},
        "audio-mean": {
            "repo": str(repos["classification"]),
            "inputs": inputs,
            "kwargs": {"modality": "audio", "pooling": "mean"},
        },
    }
    job = {"embed": cases, "output": str(tmp_path / "output.json")}
    (tmp_path / "job.json").write_text(json.dumps(job))
    run_without_package("pipeline_client.py", tmp_path / "job.json", tmp_path)
    output = json.loads((tmp_path / "output.json").read_text())
    assert output["tvlt_modules"] == []
    assert all(name.startswith("transformers_modules.") for name in output["classes"].values())
    torch.set_num_threads(1)  # the client's reduction order
    try:
        expected = {
            "joint-cls": embedder(inputs),
            "audio-mean": TvltAudioVisualEmbedder.from_pretrained(repos["classification"])(
                inputs, modality="audio", pooling="mean"
            ),
        }
    finally:
        torch.set_num_threads(THREADS)
    for name, vectors in expected.items():
        assert (torch.tensor(output["embed"][name]) - vectors).abs().max().item() <= 1e-6, name
