"""`tvlt reconstruct`: the MAE picture (what is hidden, what comes back), its determinism, options and bad input."""

import hashlib

import numpy as np
import PIL.Image
import pytest
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tone, write_clip
from conftest import SAMPLES, requires_path

from tvlt import TvltForPreTraining, TvltProcessor
from tvlt.cli import main
from tvlt.commands._mae_picture import HIDDEN_PATCH_RGB, reconstruct, render
from tvlt.inputs_tvlt import AudioVisualClip, TvltClipPreparer


HOWTO = SAMPLES / "howto100m" / "mg7Q4o9bNN0.mp4"


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    return {
        "pretraining": save_tiny_checkpoint(root / "pretraining", "pretraining"),
        "patch_level": save_tiny_checkpoint(root / "patch_level", "pretraining", audio_mask_type="patch-level"),
        "classification": save_tiny_checkpoint(root / "classification", "classification"),
    }


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    return write_clip(folder / "clip.mp4", moving_square_frames(8), waveform=tone(700.0, 1.0))


@pytest.fixture(scope="module")
def prepared(repos, clip):
    model = TvltForPreTraining.from_pretrained(repos["pretraining"]).eval()
    processor = TvltProcessor.from_pretrained(repos["pretraining"])
    inputs = TvltClipPreparer(processor, model.config)(AudioVisualClip(video=str(clip)))
    return model, processor, inputs


def test_the_reconstruction_shows_the_inputs_the_hidden_patches_and_the_prediction(prepared):
    model, processor, inputs = prepared
    recon = reconstruct(model, processor.image_processor, inputs, seed=0)
    pixel_values, audio_values = inputs["pixel_values"][0], inputs["audio_values"][0, 0]
    # the input rows are the model inputs, un-normalised (mean = std = 0.5) and laid out as frames / (freq, time)
    np.testing.assert_allclose(
        recon.frames, (pixel_values.permute(0, 2, 3, 1).numpy() * 0.5 + 0.5).clip(0, 1), atol=1e-6
    )
    np.testing.assert_allclose(recon.spectrogram, audio_values.T.numpy()[:, : recon.spectrogram.shape[1]], atol=1e-6)
    # hidden patches: the configured ratio of whole 8x8 patches
    assert recon.hidden_pixels.mean() == pytest.approx(model.config.pixel_mask_ratio, abs=0.02)
    patch_grid = recon.hidden_pixels.reshape(4, 4, 8, 4, 8)
    assert (patch_grid == patch_grid[:, :, :1, :, :1]).all()
    assert 0 < recon.hidden_bins.mean() <= model.config.audio_mask_ratio + 0.05
    # the prediction comes from the MAE heads, with the same masks as the model's own loss
    assert recon.predicted_frames.shape == recon.frames.shape
    assert np.isfinite(recon.pixel_error) and np.isfinite(recon.audio_error)
    generator = torch.Generator().manual_seed(0)
    pixel_noise = torch.rand(1, pixel_values.shape[0] * 16, generator=generator)
    audio_noise = torch.rand(1, audio_values.shape[0] // 8, generator=generator)
    with torch.no_grad():
        outputs = model(**inputs, reconstruct=True, pixel_noise=pixel_noise, audio_noise=audio_noise)
    predicted_patch = outputs.pixel_logits[0, 0].reshape(8, 8, 3).numpy() * 0.5 + 0.5
    np.testing.assert_allclose(recon.predicted_frames[0, :8, :8], predicted_patch.clip(0, 1), atol=1e-6)


def test_the_spectrogram_is_drawn_without_its_padding(prepared, clip):
    model, processor, _ = prepared
    preparer = TvltClipPreparer(processor, model.config)
    inputs = preparer(AudioVisualClip(video=str(clip), end=0.3))
    real_frames = round(0.3 * 44100) // processor.feature_extractor.hop_length  # 25: padded to 32 (patches of 8)
    assert inputs["audio_values"].shape[2] == 32
    trimmed = reconstruct(model, processor.image_processor, inputs, audio_padding_value=preparer.audio_padding_value)
    assert trimmed.spectrogram.shape[1] == trimmed.hidden_bins.shape[1] == real_frames
    assert reconstruct(model, processor.image_processor, inputs).spectrogram.shape[1] == 32


def test_the_picture_has_every_row_and_greys_the_hidden_patches(prepared):
    model, processor, inputs = prepared
    recon = reconstruct(model, processor.image_processor, inputs, seed=0)
    picture = render(recon, "title")
    assert picture.mode == "RGB" and picture.width > 500 and picture.height > 1000
    pixels = np.asarray(picture)
    assert (pixels == HIDDEN_PATCH_RGB).all(axis=-1).sum() > 1000  # the masked rows


def test_the_command_writes_the_same_png_for_the_same_seed(repos, clip, tmp_path, capsys):
    arguments = ["reconstruct", str(clip), "--model", str(repos["pretraining"])]
    assert main([*arguments, "--out", str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "a.png")
    assert main([*arguments, "--out", str(tmp_path / "b.png"), "--seed", "0"]) == 0
    assert main([*arguments, "--out", str(tmp_path / "c.png"), "--seed", "1"]) == 0
    digest = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("a.png", "b.png", "c.png")}
    assert digest["a.png"] == digest["b.png"] != digest["c.png"]
    with PIL.Image.open(tmp_path / "a.png") as image:
        assert image.format == "PNG"


def test_mask_ratio_options_change_what_is_hidden(repos, clip, prepared, tmp_path):
    assert main(["reconstruct", str(clip), "--model", str(repos["pretraining"]), "--out", str(tmp_path / "r.png"),
                 "--pixel-mask-ratio", "0.25", "--audio-mask-ratio", "0.5"]) == 0  # fmt: skip
    model, processor, inputs = prepared
    model.config.pixel_mask_ratio, model.config.audio_mask_ratio = 0.25, 0.5
    try:
        recon = reconstruct(model, processor.image_processor, inputs, seed=0)
    finally:
        model.config.pixel_mask_ratio, model.config.audio_mask_ratio = 0.75, 0.15
    assert recon.hidden_pixels.mean() == pytest.approx(0.25, abs=0.02)
    assert recon.hidden_bins.mean() == pytest.approx(0.5, abs=0.1)


def test_patch_level_audio_masking_is_drawn_too(repos, clip, tmp_path):
    assert (
        main(["reconstruct", str(clip), "--model", str(repos["patch_level"]), "--out", str(tmp_path / "p.png")]) == 0
    )


@pytest.mark.media
@requires_path(SAMPLES, "the real sample clips")
def test_the_howto100m_clip_in_the_notebooks_window(repos, tmp_path):
    # the original Demo_Video_Audio_MAE notebook showed seconds 42 to 48 of this clip
    out = tmp_path / "howto.png"
    assert main(["reconstruct", str(HOWTO), "--model", str(repos["pretraining"]), "--out", str(out), "--start", "42",
                 "--end", "48"]) == 0  # fmt: skip
    with PIL.Image.open(out) as image:
        assert image.size[0] > 500


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda r, c, t: [c, "--model", r["classification"], "--out", t / "x.png"], "is a fine-tuned classifier"),
        (lambda r, c, t: [c, "--model", r["pretraining"], "--out", t / "x.jpg"], "give a path ending in .png"),
        (lambda r, c, t: [c, "--model", r["pretraining"], "--out", t], "is a directory"),
        (lambda r, c, t: [c, "--model", r["pretraining"], "--out", t / "no" / "x.png"], "does not exist"),
        (lambda r, c, t: [t, "--model", r["pretraining"], "--out", t / "x.png"], "is a directory; expected a video"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_code_2(repos, clip, tmp_path, capsys, make_arguments, message):
    arguments = [str(argument) for argument in make_arguments(repos, str(clip), tmp_path)]
    assert main(["reconstruct", *arguments]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tvlt reconstruct: error: ") and message in lines[0], lines


def test_a_video_without_audio_needs_audio(repos, tmp_path, capsys):
    silent = write_clip(tmp_path / "silent.mp4", moving_square_frames(8))
    assert (
        main(["reconstruct", str(silent), "--model", str(repos["pretraining"]), "--out", str(tmp_path / "x.png")]) == 2
    )
    assert "has no audio track; give the audio with --audio FILE" in capsys.readouterr().err
    speech = write_clip(tmp_path / "speech.mp4", moving_square_frames(2), waveform=tone(200.0, 1.0))
    arguments = [str(silent), "--audio", str(speech), "--model", str(repos["pretraining"])]
    assert main(["reconstruct", *arguments, "--out", str(tmp_path / "x.png")]) == 0
