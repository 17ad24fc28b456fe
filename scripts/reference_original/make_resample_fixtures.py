"""Write torchaudio's resampling of test signals to tests/fixtures/original_tvlt/resample_torchaudio.npz.

The original TVLT pipeline resampled audio with `torchaudio.functional.resample` and its defaults; our port of that
resampler (`feature_extraction_tvlt.sinc_resample`) is tested against these outputs. torchaudio is not a dependency
of tvlt: run this with a Python that has it, from the repository root:

    python -m venv /tmp/venv-ta && /tmp/venv-ta/bin/pip install torch==2.9.1 'torchaudio==2.9.*' soundfile numpy
    /tmp/venv-ta/bin/python scripts/reference_original/make_resample_fixtures.py

(`../shared/samples` is needed for the MOSEI case). Files are read with soundfile: torchaudio 2.9's `load` needs
torchcodec, and on a 32-bit float WAV both give the stored samples. Each case stores the output's length, float64
sum, sum of squares and largest magnitude, and exact slices of it (start, middle, end), which keeps the file small.
"""

import sys
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio


REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from _original_cases import MOSEI_AUDIO, RESAMPLE_CASES, make_resample_input  # noqa: E402


OUTPUT = REPO_ROOT / "tests" / "fixtures" / "original_tvlt" / "resample_torchaudio.npz"
SLICE = 1000


def summarise(prefix: str, signal: np.ndarray, arrays: dict) -> None:
    length = signal.shape[-1]
    arrays[f"{prefix}/length"] = np.array(length)
    arrays[f"{prefix}/sum"] = signal.astype(np.float64).sum(axis=-1)
    arrays[f"{prefix}/sum_of_squares"] = np.square(signal.astype(np.float64)).sum(axis=-1)
    arrays[f"{prefix}/max_abs"] = np.abs(signal).max(axis=-1)
    middle = length // 2 - SLICE // 2
    for name, start in (("start", 0), ("middle", middle), ("end", length - SLICE)):
        arrays[f"{prefix}/slice_{name}"] = signal[..., start : start + SLICE]
        arrays[f"{prefix}/slice_{name}_offset"] = np.array(start)


def main() -> None:
    arrays = {}
    for name, case in RESAMPLE_CASES.items():
        if case["kind"] == "mosei" and not MOSEI_AUDIO.is_file():
            raise SystemExit(f"{MOSEI_AUDIO} is needed for the {name} case.")
        signal, rate = make_resample_input(case, soundfile)
        arrays[f"{name}/input_sum"] = signal.astype(np.float64).sum(axis=-1)
        resampled = torchaudio.functional.resample(torch.from_numpy(signal), rate, case["target"]).numpy()
        assert resampled.dtype == signal.dtype
        summarise(name, resampled, arrays)
        if signal.ndim == 2:  # the original averaged the channels after resampling them
            summarise(f"{name}/mono", resampled.mean(axis=0), arrays)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUTPUT,
        **arrays,
        torch_version=np.array(torch.__version__),
        torchaudio_version=np.array(torchaudio.__version__),
    )
    print(
        f"{OUTPUT.relative_to(REPO_ROOT)}: {OUTPUT.stat().st_size / 1024:.1f} KiB "
        f"(torchaudio {torchaudio.__version__})"
    )


if __name__ == "__main__":
    main()
