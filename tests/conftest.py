"""Shared test helpers: paths, tiny configs and tolerance checks. Tests run offline (no Hub)."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED = REPO_ROOT.parent / "shared"
SAMPLES = SHARED / "samples"
ORIGINAL_FIXTURES = SHARED / "fixtures" / "original-tvlt"

# the 4.40.2 fixture inputs are built by the same seeded code on both sides
sys.path.insert(0, str(REPO_ROOT / "scripts" / "reference_4402"))

TINY_CONFIG = dict(
    image_size=32,
    image_patch_size=[8, 8],
    spectrogram_length=64,
    frequency_length=32,
    audio_patch_size=[8, 8],
    num_frames=4,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=48,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=24,
)


def tiny_config(**overrides):
    from tvlt import TvltConfig

    return TvltConfig(**{**TINY_CONFIG, **overrides})


def tiny_inputs(config, batch_size=2, num_frames=None, time=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    num_frames = num_frames or config.num_frames
    time = time or config.spectrogram_length
    return {
        "pixel_values": torch.randn(
            batch_size, num_frames, config.num_image_channels, *config.frame_size, generator=g
        ),
        "audio_values": torch.rand(batch_size, config.num_audio_channels, time, config.frequency_length, generator=g)
        * 2
        - 1,
    }


def max_relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max |e| (the scale of the whole tensor, so near-zero entries do not dominate)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    return ((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12)).item()


def assert_close_rel(actual, expected, tol=1e-5, what="tensor"):
    err = max_relative_error(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol}"


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """Tiny random-weight TVLT repos (weights, configs, processor, code files) of each kind the CLI tells apart."""
    from _av_toys import save_tiny_checkpoint  # it imports this module

    root = tmp_path_factory.mktemp("repos")
    return {kind: save_tiny_checkpoint(root / kind, kind) for kind in ("classification", "regression", "pretraining")}


def requires_path(path: Path, what: str):
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not found at {path}")


def offline_env(root: Path, **overrides) -> dict[str, str]:
    """The environment of a child process that sees no Hub settings of this machine: offline, with its own Hub home
    and transformers modules cache under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf-home"), HF_MODULES_CACHE=str(root / "modules"))
    return {**env, **overrides}


def launcher_env() -> dict[str, str]:
    """The environment of `torchrun` / `accelerate launch` run by a test: offline, one thread per process, and none
    of the launch variables of this process (a suite run under a launcher would pass its own rank on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_SIZE", "RANK", "LOCAL_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run_without_package(client: str, job_file: Path, root: Path, **env_overrides) -> None:
    """Run `tests/<client>` (called as `client.py SITE_PACKAGES JOB_FILE`) where `tvlt` cannot be imported: another
    working directory, `python -I -S` (no script dir, no site, no PYTHON* variables), the interpreter's
    site-packages appended by the client itself, a fresh transformers modules cache, offline. The client checks
    that `import tvlt` fails before it runs the job."""
    workdir = root / "elsewhere"
    workdir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "PYTHON"))}
    env.update(
        HF_MODULES_CACHE=str(root / "modules-cache"),
        HF_HOME=str(root / "hf-home"),
        HF_HUB_OFFLINE="1",
        **env_overrides,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(Path(__file__).with_name(client)),
            sysconfig.get_paths()["purelib"],
            str(job_file),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]


@pytest.fixture(autouse=True)
def _fresh_notices():
    """Each test starts with none of the once-per-process notices given (media_tvlt.say_once)."""
    from tvlt import media_tvlt

    media_tvlt._SAID.clear()
