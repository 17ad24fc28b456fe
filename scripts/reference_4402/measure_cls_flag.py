"""Measure what keeping the CLS token attendable changes against transformers 4.40.2, on a padded batch.

    python scripts/reference_4402/measure_cls_flag.py --reference-python /work/venv4402/bin/python [--tiny]

4.40.2 builds its encoder mask as `[pixel_mask[:, :1], pixel_mask, audio_mask]`: CLS takes the padding flag of the
first (kept) video patch. Here CLS is always attendable (unless `cls_mask_from_first_audio_patch`). This script makes
a TVLT-base classifier with random weights (seed 0; `--tiny` for a small one), a padded batch of two clips from the
processor (8 and 4 frames, 3 s and 1 s of audio), saves both, runs 4.40.2's `TvltForAudioVisualClassification` /
`TvltModel` on them in a child process and ours here, and prints the largest differences of the logits and of the
encoder output, for:

- the unmasked pass with the processor's masks (every clip's first frame is real, so 4.40.2's CLS flag is 1);
- the unmasked pass with sample 0's first video patch marked as padding (as the original preprocessing mode marks an
  all-black patch), which 4.40.2 turns into a hidden CLS;
- the masked (MAE) pass with noise that keeps a padding patch of sample 1 first, which 4.40.2 turns into a hidden CLS.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch


CASES = ("unmasked, processor masks", "unmasked, first video patch padding", "masked pass, padding patch kept first")


def make_inputs(config) -> dict[str, dict]:
    rng = np.random.default_rng(0)
    height, width = config.frame_size
    videos = [rng.integers(0, 256, (frames, height + 16, width + 16, 3), dtype=np.uint8) for frames in (8, 4)]
    audios = [(0.1 * rng.standard_normal(int(44100 * seconds))).astype(np.float32) for seconds in (3, 1)]
    from tvlt import TvltFeatureExtractor, TvltImageProcessor

    image_processor = TvltImageProcessor(
        size={"shortest_edge": height}, crop_size={"height": height, "width": width}, num_frames=config.num_frames
    )
    pixels = image_processor(videos, return_tensors="pt")
    audio = TvltFeatureExtractor()(audios, sampling_rate=44100, return_tensors="pt")
    base = {
        "pixel_values": pixels["pixel_values"],
        "pixel_mask": pixels["pixel_mask"].float(),
        "audio_values": audio["audio_values"],
        "audio_mask": audio["audio_mask"],
    }
    first_patch_padding = dict(base, pixel_mask=base["pixel_mask"].clone())
    first_patch_padding["pixel_mask"][0, 0] = 0
    num_patches = base["pixel_mask"].shape[1]
    noise = torch.rand(2, num_patches, generator=torch.Generator().manual_seed(0))
    noise[1, -1] = -1.0  # sample 1's last patch (a padding frame's) is kept, and first
    masked = dict(base, mask_pixel=True, pixel_noise=noise)
    return dict(zip(CASES, (base, first_patch_padding, masked), strict=True))


def run_reference(folder: str, inputs_file: str, output_file: str) -> None:
    """Child process, transformers 4.40.2: the saved model on the saved inputs."""
    import transformers
    import transformers.models.tvlt.modeling_tvlt as modeling
    from transformers import TvltForAudioVisualClassification

    model = TvltForAudioVisualClassification.from_pretrained(folder).eval()
    all_inputs = torch.load(inputs_file)
    outputs = {}
    for case, inputs in all_inputs.items():
        inputs = dict(inputs)
        noise = inputs.pop("pixel_noise", None)
        if noise is not None:  # 4.40.2 draws the noise itself: hand it ours
            modeling.generate_pixel_mask_noise = lambda pixel_values, pixel_mask=None, mask_ratio=0.75, noise=noise: (
                noise,
                int(pixel_values.shape[1] * (1 - mask_ratio)),
            )
        with torch.no_grad():
            if inputs.get("mask_pixel"):
                hidden = model.tvlt(**inputs)[0]
                logits = model.classifier(hidden[:, 0])
            else:
                hidden = model.tvlt(**inputs)[0]
                logits = model(**inputs).logits
        outputs[case] = {"logits": logits, "hidden": hidden}
    torch.save(outputs, output_file)
    print(transformers.__version__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", required=False, help="a Python with transformers 4.40.2")
    parser.add_argument("--tiny", action="store_true", help="a small model instead of TVLT-base")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_reference(*args.worker)
        return
    if not args.reference_python:
        raise SystemExit("--reference-python (transformers 4.40.2) is needed.")

    from tvlt import TvltConfig, TvltForAudioVisualClassification

    torch.manual_seed(0)
    sizes = (
        dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128) if args.tiny else {}
    )
    config = TvltConfig(num_labels=2, **sizes)
    model = TvltForAudioVisualClassification(config).eval()
    all_inputs = make_inputs(config)
    with tempfile.TemporaryDirectory() as scratch:
        model.save_pretrained(scratch)
        inputs_file, output_file = str(Path(scratch, "inputs.pt")), str(Path(scratch, "outputs.pt"))
        torch.save(all_inputs, inputs_file)
        result = subprocess.run(
            [args.reference_python, __file__, "--worker", scratch, inputs_file, output_file],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"4.40.2 worker failed:\n{result.stderr[-3000:]}")
        reference = torch.load(output_file)
    print(
        f"{'TVLT-base' if not args.tiny else 'tiny'} random weights (seed 0), batch of 2 padded clips; ours vs 4.40.2"
    )
    print("| case | 4.40.2's CLS flag (sample 0, 1) | max abs diff, logits | max abs diff, encoder output |")
    print("|---|---|---:|---:|")
    for case, inputs in all_inputs.items():
        with torch.no_grad():
            hidden = model.tvlt(**inputs).last_hidden_state
            logits = model.classifier(hidden)
        if inputs.get("mask_pixel"):
            kept_first = torch.argsort(inputs["pixel_noise"], dim=1)[:, 0]
            flags = inputs["pixel_mask"].gather(1, kept_first[:, None])[:, 0]
        else:
            flags = inputs["pixel_mask"][:, 0]
        logit_diff = (logits - reference[case]["logits"]).abs().max().item()
        hidden_diff = (hidden - reference[case]["hidden"]).abs().max().item()
        print(f"| {case} | {flags.int().tolist()} | {logit_diff:.2e} | {hidden_diff:.2e} |")
    print(json.dumps({"torch": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())
