"""Write transformers 4.40.2's TVLT preprocessing outputs to tests/fixtures/preprocessing_4402/.

Run it from the repository root with a Python that has transformers 4.40.2 (plus numpy, torch, pillow, soundfile and
PyAV for the MOSEI case):

    /work/venvs/ref/bin/python scripts/reference_4402/make_preprocessing_fixtures.py

(any venv with `pip install transformers==4.40.2 torch pillow soundfile av` works; the real-clip cases need
`../shared/samples`). It rewrites, in tests/fixtures/preprocessing_4402/:

- `image_processor.npz`, `feature_extractor.npz`, `processor.npz`: outputs of TvltImageProcessor,
  TvltFeatureExtractor and TvltProcessor for the cases of `tests/_preprocessing_utils.py`, whose inputs the tests
  rebuild from the same seeds. Pixels derived from uint8 levels are stored as those levels (see `encode_pixels`).
- `behaviour_4402.json`: what 4.40.2 does on the inputs whose handling the tests fix (errors, ignored arguments).
- `legacy_4402/preprocessor_config.json`: the config `TvltProcessor.save_pretrained` writes (image processor keys
  overwritten by the feature extractor's); `legacy_flat/preprocessor_config.json`: one flat file holding both
  sub-processors' settings (the ZinengTang/tvlt-base layout), with non-default values on each side.

The fixtures are committed; rerun this only when a case changes (the total stays well under 1 MB).
"""

import io
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import transformers
from transformers import TvltFeatureExtractor, TvltImageProcessor, TvltProcessor


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from _preprocessing_utils import (  # noqa: E402
    AUDIO_CASES,
    FIXTURES_DIR,
    IMAGE_CASES,
    MOSEI_AUDIO,
    MOSEI_VIDEO,
    PROCESSOR_CASES,
    decode_pixels,
    encode_pixels,
    make_audio_input,
    make_video_input,
    mosei_frames,
)


if transformers.__version__ != "4.40.2":
    raise SystemExit(f"This script needs transformers 4.40.2, found {transformers.__version__}.")
warnings.filterwarnings("ignore")


def pixel_candidates(kwargs: dict, channels: int):
    """The (scale, offset) pairs that may map uint8 levels onto this case's outputs."""
    rescale = kwargs.get("rescale_factor", 1 / 255) if kwargs.get("do_rescale", True) else 1.0
    mean = np.broadcast_to(np.asarray(kwargs.get("image_mean", 0.5), dtype=np.float64), (channels,))
    std = np.broadcast_to(np.asarray(kwargs.get("image_std", 0.5), dtype=np.float64), (channels,))
    if not kwargs.get("do_normalize", True):
        mean, std = np.zeros(channels), np.ones(channels)
    for factor in (rescale, rescale / 255):  # float frames in [0, 1] were scaled to uint8 and back around PIL
        yield factor / std, -mean / std


def store_pixels(arrays: dict, prefix: str, key: str, values: np.ndarray, kwargs: dict) -> None:
    channel_axis = -1 if kwargs.get("data_format") == "channels_last" else 2
    channels = values.shape[channel_axis]
    for scale, offset in pixel_candidates(kwargs, channels):
        levels = encode_pixels(values.astype(np.float64), scale, offset, channel_axis)
        if levels is not None:
            assert np.abs(decode_pixels(levels, scale, offset, channel_axis) - values).max() <= 1e-6
            arrays[f"{prefix}/{key}/levels"] = levels
            arrays[f"{prefix}/{key}/scale"] = scale
            arrays[f"{prefix}/{key}/offset"] = offset
            arrays[f"{prefix}/{key}/dtype"] = np.array(str(values.dtype))
            return
    arrays[f"{prefix}/{key}"] = values


def image_fixtures() -> dict:
    arrays = {}
    for name, case in IMAGE_CASES.items():
        kwargs = dict(case["kwargs"])
        outputs = TvltImageProcessor()(make_video_input(case["video"]), return_tensors="np", **kwargs)
        for key, value in outputs.items():
            value = np.asarray(value)
            if key.startswith("pixel_values"):
                store_pixels(arrays, name, key, value, kwargs)
            else:
                arrays[f"{name}/{key}"] = value
    if MOSEI_VIDEO.is_file():
        kwargs = {"size": {"shortest_edge": 48}, "crop_size": {"height": 48, "width": 48}}
        outputs = TvltImageProcessor()(mosei_frames(8), return_tensors="np", **kwargs)
        store_pixels(arrays, "mosei_frames", "pixel_values", np.asarray(outputs["pixel_values"]), kwargs)
        arrays["mosei_frames/pixel_mask"] = np.asarray(outputs["pixel_mask"])
    return arrays


def audio_fixtures() -> dict:
    arrays = {}
    for name, case in AUDIO_CASES.items():
        if case["audio"].get("kind") == "mosei" and not MOSEI_AUDIO.is_file():
            continue
        extractor = TvltFeatureExtractor(**case.get("init", {}))
        outputs = extractor(make_audio_input(case["audio"]), return_tensors="np", **case["kwargs"])
        for key, value in outputs.items():
            arrays[f"{name}/{key}"] = np.asarray(value)
    return arrays


def processor_fixtures() -> dict:
    arrays = {}
    processor = TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor())
    for name, case in PROCESSOR_CASES.items():
        outputs = processor(
            images=make_video_input(case["video"]), audio=make_audio_input(case["audio"]), **case["kwargs"]
        )
        for key, value in outputs.items():
            if key == "pixel_values":
                store_pixels(arrays, name, key, np.asarray(value), {})
            else:
                arrays[f"{name}/{key}"] = np.asarray(value)
    return arrays


def outcome(function) -> dict:
    """What calling `function` does: its error, or a summary of its output."""
    try:
        result = function()
    except Exception as error:  # noqa: BLE001 - recording 4.40.2's failures is the point
        return {"raises": type(error).__name__, "message": str(error)[:300]}
    return {"returns": result}


def captured_warnings(function) -> list:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = transformers.utils.logging.get_logger("transformers")
    logger.addHandler(handler)
    try:
        function()
    finally:
        logger.removeHandler(handler)
    return [line for line in stream.getvalue().splitlines() if line]


def behaviour() -> dict:
    rng = np.random.default_rng(0)
    video = lambda frames: rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8)  # noqa: E731
    image_processor, extractor = TvltImageProcessor(), TvltFeatureExtractor()
    small = {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}}
    noise = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    record = {
        "ragged_batch": outcome(
            lambda: image_processor([video(2), video(3)], return_tensors="pt", **small)["pixel_values"].shape
        ),
        "num_frames_ignored": outcome(
            lambda: image_processor(video(6), num_frames=4, return_tensors="np", **small)["pixel_values"].shape
        ),
        "more_frames_than_num_frames": outcome(lambda: image_processor(video(9), return_tensors="np", **small)),
        "size_height_width": outcome(
            lambda: (
                image_processor(video(2), size={"height": 32, "width": 48}, return_tensors="np")["pixel_values"].shape
            )
        ),
        "mask_of_uncropped_frames": outcome(
            lambda: (
                image_processor(
                    rng.integers(0, 256, (2, 32, 48, 3), dtype=np.uint8),
                    size={"shortest_edge": 32},
                    do_center_crop=False,
                    return_tensors="np",
                )["pixel_mask"].shape
            )
        ),
        "resample_true_16k": outcome(lambda: extractor(noise, sampling_rate=16000, resample=True)),
        "stereo_clip": outcome(
            lambda: extractor([np.stack([noise, noise])], sampling_rate=44100)["audio_values"].shape
        ),
        "empty_clip": outcome(lambda: extractor(np.zeros(0, np.float32), sampling_rate=44100)),
        "short_clip": outcome(
            lambda: extractor(noise[:2000], sampling_rate=44100, return_tensors="np")["audio_values"].shape
        ),
        "int16_vs_scaled_float_max_difference": outcome(
            lambda: float(
                np.abs(
                    extractor((noise * 32767).astype(np.int16), sampling_rate=44100, return_tensors="np")[
                        "audio_values"
                    ]
                    - extractor((noise * 32767).astype(np.int16) / 32768, sampling_rate=44100, return_tensors="np")[
                        "audio_values"
                    ]
                ).max()
            )
        ),
        "processor_output_type": outcome(
            lambda: type(TvltProcessor(image_processor, extractor)(images=video(1), **small)).__name__
        ),
        "processor_mask_pixel_warnings": captured_warnings(
            lambda: TvltProcessor(image_processor, extractor)(images=video(1), mask_pixel=True)
        ),
    }
    with tempfile.TemporaryDirectory() as folder:
        TvltProcessor(TvltImageProcessor(num_frames=4), TvltFeatureExtractor(sampling_rate=22050)).save_pretrained(
            folder
        )
        saved = json.loads(Path(folder, "preprocessor_config.json").read_text())
        reloaded = TvltProcessor.from_pretrained(folder)
        record["save_pretrained_shared_file"] = {
            "saved_keys": sorted(saved),
            "reloaded_image_processor_num_frames": reloaded.image_processor.num_frames,
            "reloaded_image_processor_has_audio_keys": hasattr(reloaded.image_processor, "sampling_rate"),
        }
    return json.loads(
        json.dumps(record, default=lambda value: list(value) if isinstance(value, tuple) else str(value))
    )


def legacy_configs() -> None:
    with tempfile.TemporaryDirectory() as folder:
        TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor()).save_pretrained(folder)
        saved = Path(folder, "preprocessor_config.json").read_text()
    (FIXTURES_DIR / "legacy_4402").mkdir(parents=True, exist_ok=True)
    (FIXTURES_DIR / "legacy_4402" / "preprocessor_config.json").write_text(saved)

    # The Hub's tvlt-base keeps both sub-processors' settings in one flat file; non-default values on each side
    # show whether each sub-processor gets (only) its own.
    flat = {
        **TvltFeatureExtractor(sampling_rate=22050, hop_length_to_sampling_rate=43, padding_value=-1.0).to_dict(),
        **TvltImageProcessor(num_frames=4, crop_size={"height": 192, "width": 192}).to_dict(),
        "processor_class": "TvltProcessor",
    }
    flat.pop("_valid_processor_keys", None)
    (FIXTURES_DIR / "legacy_flat").mkdir(parents=True, exist_ok=True)
    (FIXTURES_DIR / "legacy_flat" / "preprocessor_config.json").write_text(
        json.dumps(flat, indent=2, sort_keys=True) + "\n"
    )


def main() -> None:
    FIXTURES_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURES_DIR / "image_processor.npz", **image_fixtures())
    np.savez_compressed(FIXTURES_DIR / "feature_extractor.npz", **audio_fixtures())
    np.savez_compressed(FIXTURES_DIR / "processor.npz", **processor_fixtures())
    (FIXTURES_DIR / "behaviour_4402.json").write_text(json.dumps(behaviour(), indent=2, sort_keys=True) + "\n")
    legacy_configs()
    total = sum(path.stat().st_size for path in FIXTURES_DIR.rglob("*") if path.is_file())
    for path in sorted(FIXTURES_DIR.rglob("*")):
        if path.is_file():
            print(f"{path.relative_to(FIXTURES_DIR)}: {path.stat().st_size / 1024:.1f} KiB")
    print(f"total: {total / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
