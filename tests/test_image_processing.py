"""TvltImageProcessor: 4.40.2 parity, the fixes of issue 3, the original-faithful mode, files and settings."""

import json
import logging
import math
import re

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F
from _preprocessing_utils import (
    FIXTURES_DIR,
    IMAGE_CASES,
    MOSEI_VIDEO,
    decode_pixels,
    frame_with_index,
    index_of_frame,
    make_video_input,
    mosei_frames,
    write_video,
)

from tvlt.image_processing_tvlt import PREPROCESSING_MODES, TvltImageProcessor


REFERENCE = np.load(FIXTURES_DIR / "image_processor.npz")
BEHAVIOUR_4402 = json.loads((FIXTURES_DIR / "behaviour_4402.json").read_text())
SMALL = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}
# 4.40.2 sized the mask from `size["shortest_edge"]` instead of the frames it outputs (see test_mask_counts_...)
MASK_FIXED_CASES = {"crop_pads_small_frames", "no_center_crop"}


def reference_output(name: str, key: str) -> np.ndarray:
    if f"{name}/{key}" in REFERENCE.files:
        return REFERENCE[f"{name}/{key}"]
    scale, offset = REFERENCE[f"{name}/{key}/scale"], REFERENCE[f"{name}/{key}/offset"]
    levels = REFERENCE[f"{name}/{key}/levels"]
    channel_axis = -1 if IMAGE_CASES.get(name, {}).get("kwargs", {}).get("data_format") == "channels_last" else 2
    return decode_pixels(levels, scale, offset, channel_axis)


def frames(count: int, height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def indexed_frames(count: int) -> np.ndarray:
    return np.stack([frame_with_index(index, 32, 32) for index in range(count)])


def normalised(levels: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) pixels through the default rescale and normalisation, channels first."""
    return ((np.moveaxis(levels, -1, -3).astype(np.float64) / 255) - 0.5) / 0.5


# -- transformers 4.40.2 parity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(IMAGE_CASES))
def test_outputs_match_transformers_4_40_2(name):
    case = IMAGE_CASES[name]
    outputs = TvltImageProcessor()(make_video_input(case["video"]), return_tensors="np", **case["kwargs"])
    values_key = "pixel_values_mixed" if case["kwargs"].get("is_mixed") else "pixel_values"
    mask_key = values_key.replace("values", "mask")
    assert sorted(outputs) == sorted([values_key, mask_key])
    reference = reference_output(name, values_key)
    assert outputs[values_key].shape == reference.shape and outputs[values_key].dtype == np.float32
    np.testing.assert_allclose(outputs[values_key], reference, rtol=0, atol=1e-5)
    if name not in MASK_FIXED_CASES:
        np.testing.assert_array_equal(outputs[mask_key], REFERENCE[f"{name}/{mask_key}"])
        assert outputs[mask_key].dtype == np.int64


@pytest.mark.media
@pytest.mark.skipif(not MOSEI_VIDEO.is_file(), reason="../shared/samples is not available")
def test_real_frames_match_transformers_4_40_2():
    kwargs = {"size": {"shortest_edge": 48}, "crop_size": {"height": 48, "width": 48}}
    outputs = TvltImageProcessor()(mosei_frames(8), return_tensors="np", **kwargs)
    np.testing.assert_allclose(outputs["pixel_values"], reference_output("mosei_frames", "pixel_values"), atol=1e-5)
    np.testing.assert_array_equal(outputs["pixel_mask"], REFERENCE["mosei_frames/pixel_mask"])


@pytest.mark.parametrize(
    "shape, settings",
    [
        ((3, 36, 64, 3), {"resample": 2}),
        ((3, 64, 36, 3), {"resample": 3}),
        ((2, 12, 20, 3), {"resample": 1}),
        ((2, 50, 90, 3), {"resample": 4}),
        ((2, 50, 90, 3), {"resample": 5}),
        ((2, 40, 40, 3), {}),
        ((2, 30, 45, 1), {"image_mean": 0.5, "image_std": 0.5}),
        ((2, 30, 45, 3), {"size": {"height": 40, "width": 20}, "crop_size": {"height": 32, "width": 16}}),
        ((2, 30, 45, 3), {"size": {"shortest_edge": 40}, "do_center_crop": False}),
    ],
)
def test_whole_video_resize_equals_frame_by_frame_pil(shape, settings):
    """uint8 videos take the one-horizontal-pass-per-video path; it must give PIL's per-frame pixels exactly."""
    settings = {**SMALL, **settings}
    video = frames(*shape[:3], seed=sum(shape)) if shape[-1] == 3 else frames(*shape[:3])[..., :1]
    processor = TvltImageProcessor()
    as_array = processor(video, return_tensors="np", **settings)["pixel_values"]
    as_frame_list = processor(list(video), return_tensors="np", **settings)["pixel_values"]  # per-frame path
    np.testing.assert_array_equal(as_array, as_frame_list)


def test_pytorch_tensors_and_thread_count_independence():
    video = frames(4, 40, 60)
    torch_threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        single = TvltImageProcessor()([video, video[::-1]], return_tensors="pt", **SMALL)
        torch.set_num_threads(2)
        multi = TvltImageProcessor()([video, video[::-1]], return_tensors="pt", **SMALL)
    finally:
        torch.set_num_threads(torch_threads)
    assert single["pixel_values"].dtype == torch.float32 and single["pixel_mask"].dtype == torch.int64
    assert torch.equal(single["pixel_values"], multi["pixel_values"])


# -- fixes of 4.40.2 bugs -------------------------------------------------------------------------------------------


def test_videos_of_different_lengths_are_padded_and_masked():
    """4.40.2 could not batch videos of different lengths (tensor conversion failed)."""
    assert BEHAVIOUR_4402["ragged_batch"]["raises"] == "ValueError"
    short, long = frames(2, seed=1), frames(3, seed=2)
    outputs = TvltImageProcessor()([short, long], return_tensors="pt", **SMALL)
    assert outputs["pixel_values"].shape == (2, 3, 3, 32, 32)
    assert outputs["pixel_values"][0, 2].abs().sum() == 0  # padding frame of zeros
    np.testing.assert_allclose(outputs["pixel_values"][0, :2].numpy(), normalised(short), atol=1e-6)
    assert outputs["pixel_mask"].tolist() == [[1] * 8 + [0] * 4, [1] * 12]  # 4 patches per 32x32 frame


def test_num_frames_is_honoured():
    """4.40.2 ignored `num_frames` (it returned all 6 frames for num_frames=4)."""
    assert BEHAVIOUR_4402["num_frames_ignored"]["returns"][1] == 6
    outputs = TvltImageProcessor()(indexed_frames(6), num_frames=4, return_tensors="np", **SMALL)
    assert outputs["pixel_values"].shape[1] == 4
    assert TvltImageProcessor(num_frames=3)(indexed_frames(6), **SMALL)["pixel_values"].shape[1] == 3


def test_longer_videos_are_sampled_uniformly_over_their_whole_length():
    """4.40.2 refused videos with more frames than `num_frames`; the original samples np.linspace(0, n, 8)."""
    assert BEHAVIOUR_4402["more_frames_than_num_frames"]["raises"] == "ValueError"
    video = indexed_frames(30)
    outputs = TvltImageProcessor()(video, return_tensors="np", do_resize=False, do_center_crop=False)
    picked = [index_of_frame(np.moveaxis(frame * 127.5 + 127.5, 0, -1)) for frame in outputs["pixel_values"][0]]
    assert picked == np.linspace(0, 30, 8, endpoint=False).astype(int).tolist() == [0, 3, 7, 11, 15, 18, 22, 26]


def test_size_with_height_and_width():
    """4.40.2 raised KeyError('shortest_edge') for `size={"height", "width"}`."""
    assert BEHAVIOUR_4402["size_height_width"]["raises"] == "KeyError"
    video = frames(2, 30, 50)
    size = {"height": 40, "width": 24}
    outputs = TvltImageProcessor()(video, size=size, do_center_crop=False, return_tensors="np")
    expected = np.stack(
        [np.asarray(PIL.Image.fromarray(frame).resize((24, 40), PIL.Image.BILINEAR)) for frame in video]
    )
    np.testing.assert_allclose(outputs["pixel_values"][0], normalised(expected), atol=1e-6)
    assert outputs["pixel_mask"].shape == (1, 2 * (40 // 16) * (24 // 16))


def test_mask_counts_patches_of_the_output_frames():
    """4.40.2 counted (size["shortest_edge"] // 16)**2 patches per frame: wrong whenever the frames it output had
    another size (no centre crop, a crop of another size, frames padded by the crop)."""
    assert BEHAVIOUR_4402["mask_of_uncropped_frames"]["returns"] == [1, 8]  # 2 frames of 32x48: 4 patches each
    uncropped = TvltImageProcessor()(frames(2, 32, 48), size={"shortest_edge": 32}, do_center_crop=False)
    assert uncropped["pixel_values"].shape[-2:] == (32, 48) and uncropped["pixel_mask"].shape == (1, 2 * 2 * 3)
    for name in MASK_FIXED_CASES:
        case = IMAGE_CASES[name]
        outputs = TvltImageProcessor()(make_video_input(case["video"]), return_tensors="np", **case["kwargs"])
        height, width = outputs["pixel_values"].shape[-2:]
        assert outputs["pixel_mask"].shape[1] == outputs["pixel_values"].shape[1] * (height // 16) * (width // 16)
        assert outputs["pixel_mask"].shape != REFERENCE[f"{name}/pixel_mask"].shape


# -- original-faithful mode -----------------------------------------------------------------------------------------


def original_reference(video: np.ndarray, num_frames: int = 8, size: int = 224) -> np.ndarray:
    """The original TVLT video pipeline as ../shared/fixtures/original-tvlt/README.md describes it: (T, 3, s, s)."""
    picked = video[np.linspace(0, len(video), num_frames, endpoint=False).astype(int)]
    picture = (picked > 30).all(axis=(0, 3))  # bright in every frame and channel
    rows, columns = np.flatnonzero(picture.any(axis=1)), np.flatnonzero(picture.any(axis=0))
    if rows.size:
        picked = picked[:, rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    height, width = picked.shape[1:3]
    side = min(height, width)
    top, left = math.ceil((height - side) / 2), math.ceil((width - side) / 2)
    square = torch.from_numpy(np.ascontiguousarray(picked[:, top : top + side, left : left + side]))
    resized = F.interpolate(square.permute(0, 3, 1, 2).float(), size=(size, size), mode="bicubic", align_corners=False)
    return ((resized.clamp(0, 255).round() / 255.0 - 0.5) / 0.5).numpy()


def letterboxed_video(count: int, seed: int = 0) -> np.ndarray:
    """Frames of bright noise inside black bars (8 rows top, 6 bottom, 5 columns left) and a black 30x30 square."""
    video = np.random.default_rng(seed).integers(40, 256, (count, 60, 100, 3), dtype=np.uint8)
    video[:, :8], video[:, -6:], video[:, :, :5] = 0, 0, 0
    video[:, 15:45, 35:65] = 0
    return video


def test_original_mode_follows_the_original_pipeline():
    video = letterboxed_video(11)
    outputs = TvltImageProcessor(preprocessing_mode="original")(video, return_tensors="np")
    assert outputs["pixel_values"].shape == (1, 8, 3, 224, 224)
    np.testing.assert_allclose(outputs["pixel_values"][0], original_reference(video), rtol=0, atol=1e-6)


def test_original_mode_repeats_frames_of_short_videos_and_images():
    video = letterboxed_video(3, seed=1)
    processor = TvltImageProcessor(preprocessing_mode="original", crop_size={"height": 64, "width": 64})
    outputs = processor(video, return_tensors="np")
    np.testing.assert_allclose(outputs["pixel_values"][0], original_reference(video, size=64), atol=1e-6)
    assert outputs["pixel_values"].shape == (1, 8, 3, 64, 64)
    image = processor(video[0], return_tensors="np")["pixel_values"]  # an image is a 1-frame video
    np.testing.assert_allclose(image[0], np.repeat(original_reference(video[:1], 1, 64), 8, axis=0), atol=1e-6)


def test_original_mode_masks_all_black_patches_like_the_original_model():
    video = letterboxed_video(8, seed=2)
    processor = TvltImageProcessor(preprocessing_mode="original", crop_size={"height": 64, "width": 64})
    outputs = processor(video, return_tensors="np")
    patches = outputs["pixel_values"].reshape(1, 8, 3, 4, 16, 4, 16)
    expected = (patches != -1.0).any(axis=(2, 4, 6)).reshape(1, -1)
    np.testing.assert_array_equal(outputs["pixel_mask"], expected.astype(np.int64))
    assert 0 < (outputs["pixel_mask"] == 0).sum() < outputs["pixel_mask"].size  # the black square, not the rest


def test_original_mode_keeps_a_video_with_no_bright_pixel_whole():
    dark = np.full((8, 20, 30, 3), 10, dtype=np.uint8)
    outputs = TvltImageProcessor(preprocessing_mode="original", crop_size={"height": 16, "width": 16})(dark)
    np.testing.assert_allclose(outputs["pixel_values"][0], original_reference(dark, size=16), atol=1e-6)


def test_original_mode_takes_channels_first_and_float_frames():
    video = letterboxed_video(8, seed=3)
    processor = TvltImageProcessor(preprocessing_mode="original", crop_size={"height": 32, "width": 32})
    expected = processor(video, return_tensors="np")["pixel_values"]
    np.testing.assert_array_equal(
        processor(video.transpose(0, 3, 1, 2), return_tensors="np")["pixel_values"], expected
    )
    np.testing.assert_array_equal(processor(video.astype(np.float32), return_tensors="np")["pixel_values"], expected)


# -- files ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", PREPROCESSING_MODES)
def test_video_files_give_the_same_result_as_their_frames(tmp_path, mode):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    write_video(path, num_frames=20, gop_size=5, size=(48, 64))
    with av.open(str(path)) as container:
        decoded = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    processor = TvltImageProcessor(preprocessing_mode=mode, **SMALL)
    from_file = processor([path, str(path)], return_tensors="np")
    from_frames = processor([decoded, decoded], return_tensors="np")
    np.testing.assert_array_equal(from_file["pixel_values"], from_frames["pixel_values"])
    np.testing.assert_array_equal(from_file["pixel_mask"], from_frames["pixel_mask"])


@pytest.mark.media
@pytest.mark.skipif(not MOSEI_VIDEO.is_file(), reason="../shared/samples is not available")
def test_mosei_file_in_original_mode():
    outputs = TvltImageProcessor(preprocessing_mode="original")(str(MOSEI_VIDEO), return_tensors="pt")
    assert outputs["pixel_values"].shape == (1, 8, 3, 224, 224)
    np.testing.assert_allclose(outputs["pixel_values"][0].numpy(), original_reference(mosei_frames(149)), atol=1e-6)


# -- inputs, settings, errors ---------------------------------------------------------------------------------------


def test_channels_last_output_and_mixed_outputs():
    video = frames(2)
    outputs = TvltImageProcessor()(video, data_format="channels_last", is_mixed=True, return_tensors="np", **SMALL)
    assert sorted(outputs) == ["pixel_mask_mixed", "pixel_values_mixed"]
    assert outputs["pixel_values_mixed"].shape == (1, 2, 32, 32, 3)
    kept = TvltImageProcessor()(video.transpose(0, 3, 1, 2), data_format=None, return_tensors="np", **SMALL)
    assert kept["pixel_values"].shape == (1, 2, 3, 32, 32)


def test_pil_images_in_other_modes_are_converted_to_rgb():
    rgba = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 4), dtype=np.uint8), "RGBA")
    outputs = TvltImageProcessor()([rgba], return_tensors="np", **SMALL)
    expected = TvltImageProcessor()([rgba.convert("RGB")], return_tensors="np", **SMALL)
    np.testing.assert_array_equal(outputs["pixel_values"], expected["pixel_values"])


def test_already_rescaled_frames_warn(caplog):
    logging.Logger.warning_once.cache_clear()  # transformers warns once per process
    with caplog.at_level(logging.WARNING):
        TvltImageProcessor()(np.random.default_rng(0).random((1, 32, 32, 3)), **SMALL)
    assert "already rescaled" in caplog.text


@pytest.mark.parametrize(
    "videos, match",
    [
        (42, "videos"),
        ("", "The video path is empty"),
        (np.zeros((4, 4)), "3-D .* 4-D .* or 5-D"),
        ([np.zeros((2, 8, 8, 3)), 7], "videos"),
        ([[np.zeros((8, 8, 3))], []], "video 1 must be a non-empty list"),
        (np.zeros((2, 8, 8, 4), np.uint8), "cannot tell the channel axis"),
        (np.full((1, 8, 8, 3), 1.5), "float pixel values must lie in"),
        (np.full((1, 8, 8, 3), 300), r"integer pixel values must lie in \[0, 255\]"),
        ([frames(1, 32, 32), frames(1, 40, 40)], None),  # fine: both centre-cropped to 32x32
        (np.zeros((0, 8, 8, 3), np.uint8), "has no frames"),
    ],
)
def test_bad_videos_raise_clear_errors(videos, match):
    if match is None:
        assert TvltImageProcessor()(videos, **SMALL)["pixel_values"].shape == (2, 1, 3, 32, 32)
        return
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        TvltImageProcessor()(videos, **SMALL)


@pytest.mark.parametrize("mode", PREPROCESSING_MODES)
@pytest.mark.parametrize("as_list", [False, True])
@pytest.mark.parametrize(
    "pixels, reason",
    [
        (frames(2) > 128, "booleans are not pixel values"),
        (torch.from_numpy(frames(2) > 128), "booleans are not pixel values"),
        (frames(2) + 1j, "the imaginary parts are not zero"),
        (np.full((2, 32, 32, 3), "128"), "the values are not numbers"),
        (np.full((2, 32, 32, 3), b"128"), "the values are not numbers"),
        (np.full((2, 32, 32, 3), None), "an object array must hold numbers"),
        (np.full((2, 32, 32, 3), True, dtype=object), "an object array must hold numbers"),
        (frames(2).astype("datetime64[s]"), "the values are not numbers"),
        (frames(2).astype("timedelta64[s]"), "the values are not numbers"),
    ],
)
def test_frames_that_are_not_pixel_values_are_refused_naming_the_dtype(pixels, reason, as_list, mode):
    """4.40.2 read booleans as the levels 0 and 1 (nearly black frames) and failed inside numpy on the others."""
    dtype = re.escape(str(pixels.dtype).removeprefix("torch."))
    with pytest.raises(ValueError, match=rf"`videos`/`images`: frames of dtype \|?{dtype} .*: {reason}"):
        TvltImageProcessor(preprocessing_mode=mode)(list(pixels) if as_list else pixels, **SMALL)


@pytest.mark.parametrize(
    "pixels",
    [
        frames(2).astype(np.complex64),  # no imaginary part: 4.40.2 read the real part
        frames(2).astype(object),
        frames(2).astype(np.float16),
        torch.from_numpy(frames(2).astype(np.float32)).bfloat16(),  # 4.40.2 could not convert it
    ],
)
def test_numbers_of_other_dtypes_are_read_as_their_values(pixels):
    expected = TvltImageProcessor()(frames(2).astype(np.float64), **SMALL)["pixel_values"]
    np.testing.assert_array_equal(TvltImageProcessor()(pixels, **SMALL)["pixel_values"], expected)
    np.testing.assert_array_equal(TvltImageProcessor()(list(pixels), **SMALL)["pixel_values"], expected)


def test_frames_of_different_sizes_need_a_common_output_size():
    with pytest.raises(ValueError, match="different shapes"):
        TvltImageProcessor()([frames(1, 32, 32), frames(1, 32, 48)], do_center_crop=False, size={"shortest_edge": 32})


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"size": {"longest_edge": 10}}, "size"),
        ({"crop_size": {"shortest_edge": 10}}, "crop_size"),
        ({"patch_size": [16, 0]}, "patch_size"),
        ({"num_frames": 0}, "num_frames"),
        ({"preprocessing_mode": "hf"}, "preprocessing_mode"),
    ],
)
def test_bad_settings_raise(settings, match):
    with pytest.raises(ValueError, match=match):
        TvltImageProcessor(**settings)
    if "preprocessing_mode" not in settings:
        with pytest.raises(ValueError, match=match):
            TvltImageProcessor()(frames(1), **settings)


def test_bad_call_options_raise():
    with pytest.raises(ValueError, match="data_format"):
        TvltImageProcessor()(frames(1), data_format="channels_middle")
    with pytest.raises(ValueError, match="image_mean"):
        TvltImageProcessor()(frames(1), image_mean=[0.5, 0.5], **SMALL)
    with pytest.raises(TypeError):
        TvltImageProcessor()(frames(1), mask_pixel=True)


def test_save_and_load_keep_the_settings(tmp_path):
    processor = TvltImageProcessor(num_frames=4, preprocessing_mode="original", size={"height": 100, "width": 120})
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["num_frames"] == 4 and saved["preprocessing_mode"] == "original"
    assert not any(key.startswith("_") for key in saved)
    reloaded = TvltImageProcessor.from_pretrained(tmp_path)
    assert reloaded.to_dict() == processor.to_dict()


def test_from_pretrained_settings_and_legacy_configs(caplog):
    with caplog.at_level(logging.WARNING):
        processor = TvltImageProcessor.from_pretrained(
            FIXTURES_DIR / "legacy_4402", num_frames=2, preprocessing_mode="original"
        )
    assert caplog.text == ""
    assert (processor.num_frames, processor.preprocessing_mode) == (2, "original")
    flat = TvltImageProcessor.from_pretrained(FIXTURES_DIR / "legacy_flat")
    assert flat.num_frames == 4 and flat.crop_size == {"height": 192, "width": 192}
    assert not any(hasattr(flat, key) for key in ("sampling_rate", "feature_size", "n_fft", "hop_length", "freq_len"))
