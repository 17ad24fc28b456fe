"""Write 4.40.2-saved processors of models that are not 224x224 / 8 frames to tests/fixtures/processor_4402/.

transformers 4.40.2's `TvltProcessor.save_pretrained` wrote the image processor's and the feature extractor's
settings to the same `preprocessor_config.json`, the feature extractor's last: the image settings were lost, and
reloading gave 224x224 frames, 8 frames and the *audio* patch size whatever the model. This script saves, with 4.40.2,
what a user of such a model saved. Run it from the repository root with a Python that has transformers 4.40.2:

    /work/venv4402/bin/python scripts/reference_4402/make_sized_processor_fixtures.py

For each case, `tests/fixtures/processor_4402/<case>/` gets the model's `config.json` and the processor's
`preprocessor_config.json` as 4.40.2 writes them; `outputs_4402.npz` holds the outputs of the processor as it was
built (sized to the model) before saving, on the inputs of `fixture_inputs.make_clip_arrays`. `manifest.json`
records the cases and what 4.40.2 reloads from each folder (its `from_pretrained`).

- `square`, `oblong`: the model fixtures' configurations, with processors sized to them (as a careful user would).
- `square_default_processor`: the `square` model saved with a default `TvltProcessor()` (TVLT-base sizes).
- `base`: TVLT-base (the defaults everywhere): nothing contradicts, 4.40.2's reload is right (no outputs stored).
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import transformers
from fixture_inputs import make_clip_arrays
from make_model_fixtures import CASES
from transformers import TvltConfig, TvltFeatureExtractor, TvltImageProcessor, TvltProcessor


if transformers.__version__ != "4.40.2":
    sys.exit(f"needs transformers 4.40.2 (the reference), found {transformers.__version__}")

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "processor_4402"
SEED = 7


def sized_processor(config: TvltConfig) -> TvltProcessor:
    size = config.image_size
    image_processor = TvltImageProcessor(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        patch_size=list(config.image_patch_size),
        num_frames=config.num_frames,
    )
    feature_extractor = TvltFeatureExtractor(
        spectrogram_length=config.spectrogram_length,
        feature_size=config.frequency_length,
        patch_size=list(config.audio_patch_size),
    )
    return TvltProcessor(image_processor, feature_extractor)


def reloaded_settings(folder: Path) -> dict:
    processor = TvltProcessor.from_pretrained(folder)
    image, audio = processor.image_processor, processor.feature_extractor
    return {
        "crop_size": image.crop_size,
        "size": image.size,
        "num_frames": image.num_frames,
        "image_patch_size": list(image.patch_size),
        "feature_size": audio.feature_size,
        "audio_patch_size": list(audio.patch_size),
        "spectrogram_length": audio.spectrogram_length,
    }


def outputs(processor: TvltProcessor, config: TvltConfig) -> dict:
    video, audio = make_clip_arrays(config.num_frames, SEED)
    result = processor(images=[list(video)], audio=audio, sampling_rate=44100, return_tensors="np")
    return {name: np.asarray(value) for name, value in result.items()}


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    manifest = {"transformers": transformers.__version__, "input_seed": SEED, "cases": {}}
    cases = {
        "square": (CASES["square"], sized_processor),
        "oblong": (CASES["oblong"], sized_processor),
        "square_default_processor": (
            CASES["square"],
            lambda config: TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor()),
        ),
        "base": ({}, lambda config: TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor())),
    }
    for case, (overrides, make_processor) in cases.items():
        folder = OUT / case
        config = TvltConfig(**overrides)
        config.save_pretrained(folder)
        processor = make_processor(config)
        processor.save_pretrained(folder)
        entry = {"config": overrides, "reloaded_4402": reloaded_settings(folder)}
        if case in ("square", "oblong"):
            np.savez_compressed(folder / "outputs_4402.npz", **outputs(processor, config))
            entry["outputs"] = "outputs_4402.npz"
        manifest["cases"][case] = entry
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
