"""Run the original TVLT code on the cases of tests/_original_cases.py; write its outputs to
tests/fixtures/original_tvlt/original_outputs.npz.

No original code is in this repository: point `--original-code` at a checkout of zinengtang/TVLT (commit 7cb83db, the
one `tvlt convert` follows), e.g. `git clone https://github.com/zinengtang/TVLT /tmp/TVLT`. Run from the repository
root, with `../shared/samples` (MOSEI clip) and `../shared/fixtures/original-tvlt` (tiny original checkpoints):

    python -m venv /tmp/venv-orig
    /tmp/venv-orig/bin/pip install torch==2.9.1 torchvision==0.24.1 'torchaudio==2.9.*' 'librosa==0.9.2' \\
        'setuptools<70' timm einops decord==0.6.0 transformers==4.40.2 soundfile numpy
    /tmp/venv-orig/bin/python scripts/reference_original/make_original_fixtures.py --original-code /tmp/TVLT

What runs is the original's own code: `rawvideo_utils.load_audio` / `load_video` (torchaudio resampling, librosa 0.9.2
mel spectrogram, its padding and cut; decord frames, border crop, torchvision resize) and `model/modules/tvlt.py`
(the TVLT model, its masks derived from token values, its seeded MAE masking) with the tiny checkpoints' weights.
Where today's packages differ from the original's (torch 1.10, torchaudio 0.10, torchvision 0.11, numpy < 1.24),
the script restores the old behaviour and says so:

- `np.int` (removed in numpy 1.24) is `int` again, as `load_video` uses it;
- torchvision's `Resize` defaults to `antialias=False`, as 0.11 resized tensors (0.17 changed the default);
- `torchaudio.load` (which needs torchcodec from 2.9 on) reads with soundfile: float32 `(channels, samples)` scaled
  to [-1, 1], what torchaudio returned for these 32-bit float and 16-bit PCM WAVs;
- `moviepy`, `audiosegment` and `ffmpeg` are empty stand-ins: imported by `rawvideo_utils` at the top, used only
  for the audio tracks of video files, which no case reads.

The model runs in float32 on the CPU, as the original demos did on a GPU. To keep the file small, only the
spectrograms of `WHOLE_SPECTROGRAMS` are stored whole (the others as their first and last frames and their sums over
each frame and each mel bin), and of the model outputs only what the tests compare.
"""

import argparse
import sys
import tempfile
import types
from functools import partial
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchvision


REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from _original_cases import (  # noqa: E402
    AUDIO_FILE_CASES,
    EDGE_FRAMES,
    FIXTURES_DIR,
    MOSEI_VIDEO,
    ORIGINAL_CHECKPOINTS,
    WHOLE_SPECTROGRAMS,
    make_audio_file,
)


OUTPUT = FIXTURES_DIR / "original_outputs.npz"
CHECKPOINTS = {
    "mae": "tiny_orig_tvlt_mae.pt",
    "mosei_sa": "tiny_orig_tvlt_mosei_sa.pt",
    "mosei_ea": "tiny_orig_tvlt_mosei_ea.pt",
}
LOSS_NAMES = {"vam": 0, "vtm": 0, "vatr": 0, "mae_audio": 0, "mae_video": 0, "vqa": 0, "mlm": 0, "mosei": 0}
TASKS = {
    "mae": {"vam": 1, "mae_audio": 1, "mae_video": 1},
    "mosei_sa": {"mosei": 1},
    "mosei_ea": {"moseiemo": 1},
}
MAE_SEED = 123


# -- the original code, importable today ------------------------------------------------------------------------------


def import_original(code: Path):
    np.int = int  # noqa: NPY001 - numpy < 1.24, as the original ran
    resize_init = torchvision.transforms.Resize.__init__

    def resize_without_antialias(self, size, interpolation=2, max_size=None, antialias=False):
        resize_init(self, size, interpolation, max_size, antialias)

    torchvision.transforms.Resize.__init__ = resize_without_antialias

    import torchaudio

    def load_like_torchaudio(path, *args, **kwargs):
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(np.ascontiguousarray(data.T)), rate

    torchaudio.load = load_like_torchaudio
    for name in ("moviepy", "moviepy.editor", "audiosegment", "ffmpeg"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["moviepy.editor"].AudioFileClip = None

    # The packages' __init__ files import the training stack (pytorch_lightning, sacred, every dataset): register
    # them as bare packages so that only the modules used here are executed.
    sys.path.insert(0, str(code))
    for package in ("model", "model.modules", "model.data", "model.data.datasets"):
        module = types.ModuleType(package)
        module.__path__ = [str(code / package.replace(".", "/"))]
        sys.modules[package] = module
    import model.data.datasets.rawvideo_utils as rawvideo_utils
    import model.modules.tvlt as tvlt

    return rawvideo_utils, tvlt


def original_model(tvlt, name: str, num_frames: int):
    """The original TVLT class with a tiny checkpoint's weights (sizes as in ../shared/fixtures/original-tvlt)."""
    config = {
        "loss_names": {**LOSS_NAMES, "moseiemo": 0, **TASKS[name]},
        "use_audio": True,
        "use_text": False,
        "frequency_size": 128,
        "max_frames": 64,
        "max_audio_patches": 1020,
        "hidden_size": 32,
        "decoder_hidden_size": 16,
        "num_frames": num_frames,
        "frame_masking": True,
        "patch_size": 16,
        "audio_patch_size": [16, 16],
        "video_size": 224,
    }
    model = tvlt.TVLT(
        patch_size=16,
        audio_patch_size=[16, 16],
        embed_dim=32,
        depth=2,
        num_heads=2,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        config=config,
    )
    state_dict = torch.load(ORIGINAL_CHECKPOINTS / CHECKPOINTS[name], weights_only=True)
    model.load_state_dict(state_dict)
    return model.float().eval()


# -- cases ----------------------------------------------------------------------------------------------------------


def store_spectrogram(arrays: dict, prefix: str, audio: torch.Tensor, whole: bool) -> None:
    values = audio[0, 0].numpy()  # (time, 128)
    arrays[f"{prefix}/shape"] = np.array(audio.shape)
    if whole:
        arrays[f"{prefix}/audio_values"] = values
    else:
        arrays[f"{prefix}/first_frames"] = values[:EDGE_FRAMES]
        arrays[f"{prefix}/last_frames"] = values[-EDGE_FRAMES:]
        arrays[f"{prefix}/frame_sums"] = values.astype(np.float64).sum(axis=1)
        arrays[f"{prefix}/bin_sums"] = values.astype(np.float64).sum(axis=0)


def audio_cases(rawvideo_utils, tvlt, scratch: Path, arrays: dict) -> dict:
    model = original_model(tvlt, "mosei_sa", num_frames=8)
    spectrograms = {}
    for name, case in AUDIO_FILE_CASES.items():
        path = make_audio_file(case, scratch / f"{name}.wav", soundfile)
        audio = rawvideo_utils.load_audio(str(path), sr=44100)  # (1, 1, time, 128) float32
        store_spectrogram(arrays, f"audio/{name}", audio, whole=name in WHOLE_SPECTROGRAMS)
        arrays[f"audio/{name}/audio_mask"] = model.get_patch_mask(audio).float().numpy()  # the original's rule
        spectrograms[name] = audio
    return spectrograms


def video_summary(arrays: dict, prefix: str, video: torch.Tensor) -> None:
    """Per-frame sums and two 16x16 patches of each frame: enough to find where frames differ, and small."""
    frames = video[0].double()
    arrays[f"{prefix}/shape"] = np.array(video.shape)
    arrays[f"{prefix}/frame_sums"] = frames.sum(dim=(1, 2, 3)).numpy()
    arrays[f"{prefix}/corner_patches"] = video[0, :, :, :16, :16].numpy()
    arrays[f"{prefix}/centre_patches"] = video[0, :, :, 104:120, 104:120].numpy()


@torch.no_grad()
def end_to_end_cases(rawvideo_utils, tvlt, spectrograms: dict, arrays: dict) -> None:
    """The real MOSEI clip, and its silent-start variant, through the original's pipeline and the tiny models."""
    video = rawvideo_utils.load_video(str(MOSEI_VIDEO), num_frames=8)  # (1, 8, 3, 224, 224)
    video_summary(arrays, "mosei_video", video)
    models = {name: original_model(tvlt, name, num_frames=8) for name in CHECKPOINTS}
    for audio_name in ("mosei", "mosei_silent_start"):
        audio = spectrograms[audio_name]
        for name in ("mosei_sa", "mosei_ea"):
            hidden, *_ = models[name](video=video, audio=audio)
            arrays[f"e2e/{audio_name}/{name}.logits"] = models[name].classifier(hidden).numpy()
        hidden, *_ = models["mae"](video=video, audio=audio)
        arrays[f"e2e/{audio_name}/mae.matching_logits"] = models["mae"].matching_score(hidden).numpy()


@torch.no_grad()
def mae_pass(model, video, audio, seed: int) -> dict:
    """The original's seeded MAE pass: its audio reconstruction of the first 16 patches (2 time steps), and masks."""
    torch.manual_seed(seed)
    _, decoder_audio, _, _, audio_label_mask, video_label_mask = model(
        video=video, audio=audio, mask_visual=True, use_mae=True
    )
    return {
        "audio_pred_first_patches": model.mae_score_audio(decoder_audio)[:, :16].numpy(),
        "audio_label_mask": audio_label_mask.numpy(),
        "pixel_label_mask": video_label_mask.numpy(),
    }


@torch.no_grad()
def model_cases(tvlt, spectrograms: dict, arrays: dict) -> None:
    reference = torch.load(ORIGINAL_CHECKPOINTS / "tiny_reference.pt", weights_only=True)
    models = {name: original_model(tvlt, name, num_frames=1) for name in CHECKPOINTS}

    # The tiny reference batch with sample 0's first 16 frames silent (-1): its first audio patch is padding, and
    # the original hides CLS from attention in sample 0 only.
    video, audio = reference["video"], reference["audio"].clone()
    audio[0, 0, :16] = -1.0
    arrays["silent_start/audio_mask"] = models["mae"].get_patch_mask(audio).float().numpy()
    for name in ("mosei_sa", "mosei_ea"):
        hidden, *_ = models[name](video=video, audio=audio)
        arrays[f"silent_start/{name}.logits"] = models[name].classifier(hidden).numpy()
        if name == "mosei_sa":  # CLS and the first 16 audio tokens (original order: CLS, audio, video)
            arrays["silent_start/mosei_sa.encoder_out_first_tokens"] = hidden[:, :17].numpy()
    hidden, *_ = models["mae"](video=video, audio=audio)
    arrays["silent_start/mae.matching_logits"] = models["mae"].matching_score(hidden).numpy()
    for key, value in mae_pass(models["mae"], video, audio, MAE_SEED).items():
        arrays[f"silent_start/mae.{key}"] = value

    # The padding rule: a 32-frame clip becomes 48 frames; the MAE pass draws its masks over 3 time patches, not 2.
    for name in ("frames_32", "frames_32_silent_start"):
        audio = spectrograms[name]
        for key, value in mae_pass(models["mae"], video[:1], audio, MAE_SEED).items():
            arrays[f"padding/{name}/mae.{key}"] = value
        hidden, *_ = models["mosei_sa"](video=video[:1], audio=audio)
        arrays[f"padding/{name}/mosei_sa.logits"] = models["mosei_sa"].classifier(hidden).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--original-code", type=Path, required=True, help="checkout of zinengtang/TVLT (7cb83db)")
    args = parser.parse_args()
    for needed in (MOSEI_VIDEO, ORIGINAL_CHECKPOINTS):
        if not needed.exists():
            raise SystemExit(f"{needed} is needed.")
    rawvideo_utils, tvlt = import_original(args.original_code.resolve())
    torch.set_num_threads(1)  # one reduction order for the reference
    arrays = {}
    with tempfile.TemporaryDirectory() as scratch:
        spectrograms = audio_cases(rawvideo_utils, tvlt, Path(scratch), arrays)
    end_to_end_cases(rawvideo_utils, tvlt, spectrograms, arrays)
    model_cases(tvlt, spectrograms, arrays)
    import librosa
    import torchaudio

    versions = f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, librosa {librosa.__version__}"
    np.savez_compressed(OUTPUT, **arrays, versions=np.array(versions))
    print(f"{OUTPUT.relative_to(REPO_ROOT)}: {OUTPUT.stat().st_size / 1024:.1f} KiB ({versions})")


if __name__ == "__main__":
    main()
