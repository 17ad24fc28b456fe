"""Make a tiny TVLT checkpoint with RANDOM weights, for trying the tools offline (no download, a second or two).

    python examples/make_demo_checkpoint.py demo/tvlt-tiny-classifier                # for `tvlt predict`
    python examples/make_demo_checkpoint.py demo/tvlt-tiny-pretraining --pretraining # for `tvlt reconstruct`, matching

The folder is a complete remote-code repo (config.json with auto_map and custom_pipelines, model.safetensors, the
processor config, the code files), exactly what `tvlt convert` or `save_pretrained` give for real weights. The
architecture is a scaled-down TVLT (2 layers of width 64, 64x64 frames, 3 s of audio) and the weights are random
(seeded, so every run writes the same ones): predictions, match scores and reconstructions are meaningless. They show
the shape of the outputs; for real ones convert `ZinengTang/tvlt-base` (see docs/convert-and-publish.md).
"""

import argparse
import json
from pathlib import Path

import torch
from transformers.utils import logging

from tvlt import (
    TvltConfig,
    TvltFeatureExtractor,
    TvltForAudioVisualClassification,
    TvltForPreTraining,
    TvltImageProcessor,
    TvltProcessor,
)


# The labels of the original TVLT-MOSEI-EA head (multi-label emotions): the classifier shows that output format.
DEMO_LABELS = ("happy", "sad", "angry", "fear", "disgust", "surprise")
DEMO_SEED = 0
IMAGE_SIZE = 64
NUM_FRAMES = 8
SPECTROGRAM_LENGTH = 256  # ~3 s of audio at 44.1 kHz with a 512-sample hop
# A narrow TVLT (the widths; benchmarks/gpu_check.py --size tiny uses them too): seconds to run on a CPU
NARROW_WIDTHS = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    decoder_hidden_size=32,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=64,
)


def demo_config(pretraining: bool) -> TvltConfig:
    labels = (
        {}
        if pretraining
        else {
            "id2label": dict(enumerate(DEMO_LABELS)),
            "label2id": {label: index for index, label in enumerate(DEMO_LABELS)},
            "problem_type": "multi_label_classification",
        }
    )
    return TvltConfig(
        image_size=IMAGE_SIZE,
        num_frames=NUM_FRAMES,
        spectrogram_length=SPECTROGRAM_LENGTH,
        **NARROW_WIDTHS,
        **labels,
    )


def demo_processor() -> TvltProcessor:
    return TvltProcessor(
        image_processor=TvltImageProcessor(
            size={"shortest_edge": IMAGE_SIZE},
            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
            num_frames=NUM_FRAMES,
        ),
        feature_extractor=TvltFeatureExtractor(spectrogram_length=SPECTROGRAM_LENGTH),
    )


def make_demo_checkpoint(out, pretraining: bool = False) -> Path:
    """Write the demo checkpoint to `out` (created; must be empty or absent) and return its path."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty.")
    torch.manual_seed(DEMO_SEED)
    model_class = TvltForPreTraining if pretraining else TvltForAudioVisualClassification
    model = model_class(demo_config(pretraining))
    model.save_pretrained(out)
    demo_processor().save_pretrained(out)
    kind = "pre-training (matching head + MAE decoder)" if pretraining else "multi-label emotion classifier"
    (out / "README.md").write_text(
        f"# Tiny TVLT demo checkpoint: {kind}, RANDOM weights\n\n"
        "Made by `examples/make_demo_checkpoint.py` of the tvlt project to try its tools offline. The weights are "
        "random (seed 0): every prediction, match score and reconstruction of this model is meaningless.\n"
    )
    # say it where tools and people look first too
    config = json.loads((out / "config.json").read_text())
    config["tvlt_demo_note"] = "random weights, for trying the tools only"
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (absent or empty)")
    parser.add_argument(
        "--pretraining",
        action="store_true",
        help="a TvltForPreTraining checkpoint (for `tvlt reconstruct` and matching) instead of a classifier",
    )
    args = parser.parse_args()
    logging.disable_progress_bar()
    out = make_demo_checkpoint(args.out, pretraining=args.pretraining)
    print(f"{out}: tiny TVLT with RANDOM weights (outputs are meaningless; for trying the tools only)")


if __name__ == "__main__":
    main()
