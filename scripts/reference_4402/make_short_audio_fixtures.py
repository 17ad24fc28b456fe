"""Write transformers 4.40.2's output for clips shorter than one audio patch to
tests/fixtures/preprocessing_4402/short_audio.npz (issue 9: such clips must give 4.40.2's output, not an error).

Run it from the repository root with a Python that has transformers 4.40.2 (see make_preprocessing_fixtures.py):

    /work/venv4402/bin/python scripts/reference_4402/make_short_audio_fixtures.py

It stores, for each case of `SHORT_AUDIO_CASES` in `tests/_preprocessing_utils.py` (inputs rebuilt by the tests from
the same seeds), `<case>/audio_values` and `<case>/audio_mask`, and for each of `EMPTY_AUDIO_LENGTHS` the shape of the
`audio_values` 4.40.2 returned (`empty_<length>/shape`); and the hop length 4.40.2 used when given `hop_length=256`
(`hop_length_256/hop_length`).
"""

import sys
import warnings
from pathlib import Path

import numpy as np
import transformers
from transformers import TvltFeatureExtractor


sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from _preprocessing_utils import EMPTY_AUDIO_LENGTHS, FIXTURES_DIR, SHORT_AUDIO_CASES, make_audio_input  # noqa: E402


if transformers.__version__ != "4.40.2":
    raise SystemExit(f"This script needs transformers 4.40.2, found {transformers.__version__}.")
warnings.filterwarnings("ignore")


def main() -> None:
    arrays = {}
    for name, case in SHORT_AUDIO_CASES.items():
        extractor = TvltFeatureExtractor(**case.get("init", {}))
        outputs = extractor(make_audio_input(case["audio"]), return_tensors="np", **case["kwargs"])
        for key, value in outputs.items():
            arrays[f"{name}/{key}"] = np.asarray(value)
    # not a short clip, but also issue 9: a `hop_length` argument was silently replaced by the derived one
    arrays["hop_length_256/hop_length"] = np.array(TvltFeatureExtractor(hop_length=256).hop_length)
    for length in EMPTY_AUDIO_LENGTHS:
        clip = make_audio_input({"seed": 60, "lengths": [length]})
        outputs = TvltFeatureExtractor()(clip, sampling_rate=44100, return_tensors="np")
        arrays[f"empty_{length}/shape"] = np.array(outputs["audio_values"].shape)
    path = FIXTURES_DIR / "short_audio.npz"
    np.savez_compressed(path, **arrays)
    print(f"{path}: {path.stat().st_size / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
