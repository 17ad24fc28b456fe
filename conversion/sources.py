"""Reading a conversion source (SRC): a transformers-format TVLT folder or Hub repo, or an original checkpoint file."""

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import yaml
from huggingface_hub import metadata_load

from .. import modeling_tvlt
from ..checkpoints.hub import read_from_cache_only
from ..checkpoints.layout import PROCESSOR_CONFIG_FILES
from ..checkpoints.preflight import (
    build_on_meta,
    check_checkpoint,
    check_fit,
    find_weight_files,
    load_weights_only,
    specs_of,
    tensor_specs,
)
from ..configuration_tvlt import TvltConfig
from ..modeling_tvlt import TvltPreTrainedModel
from ..remote_code_tvlt import ARCHITECTURES as _ARCHITECTURE_NAMES
from ..remote_code_tvlt import CLASSIFIER_ARCHITECTURE, PRETRAINING_ARCHITECTURE
from .errors import ConversionError, first_line
from .original import (
    OriginalOptions,
    convert_original_state_dict,
    looks_like_original,
    original_config,
    original_layout,
    unwrap_original_checkpoint,
)
from .paths import HUB_ID
from .processors import build_processor


logger = logging.getLogger(__name__)

KIND_LEGACY = "legacy"
KIND_ORIGINAL = "original"

ARCHITECTURES = {name: getattr(modeling_tvlt, name) for name in _ARCHITECTURE_NAMES}

# what a conversion reads from a Hub repo: the configs, the card, and the weights of one format (shards included)
_HUB_FILES = ("config.json", *PROCESSOR_CONFIG_FILES, "README.md")
_HUB_WEIGHT_PATTERNS = (
    ("model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"),
)


@dataclass
class LoadedCheckpoint:
    """A source checkpoint as our model and processor, ready to be written as a repo."""

    model: TvltPreTrainedModel
    processor: object
    kind: str
    description: str
    source: str
    license: str | None = None  # from the source's own model card, when it states one
    hub_repo: str | None = None  # the Hub repo id of a Hub SRC: the card's `base_model`
    hub_commit: str | None = None  # the commit of that repo that was read
    processor_saved: bool = True  # a transformers-format SRC had processor settings (else TVLT-base, sized)


def load_checkpoint(
    src: str,
    *,
    original_options: OriginalOptions | None = None,
    revision: str | None = None,
) -> LoadedCheckpoint:
    """
    Load SRC (a transformers-format TVLT folder, a Hub repo id, or an original checkpoint file) as our classes.

    `original_options` apply to original checkpoints only (sizes the weights cannot tell; defaults: the released
    models'); `revision` to Hub repos only.
    """
    path = Path(src).expanduser()
    if path.is_file():
        if revision is not None:
            raise ConversionError("`revision` applies to a Hub repo SRC, not to a local file.")
        return _load_original(path, original_options or OriginalOptions())
    if path.is_dir():
        if revision is not None:
            raise ConversionError("`revision` applies to a Hub repo SRC, not to a local folder.")
        _refuse_original_options(original_options, f"{src} (a transformers-format folder)")
        return _load_legacy(path, source=str(src))
    if HUB_ID.match(str(src)):
        _refuse_original_options(original_options, f"{src} (a Hub repo)")
        folder = _download_hub_checkpoint(str(src), revision)
        checkpoint = _load_legacy(folder, source=str(src) + (f"@{revision}" if revision else ""))
        # a Hub cache's snapshot folder is named for the commit it holds
        return replace(checkpoint, hub_repo=str(src), hub_commit=folder.name)
    raise FileNotFoundError(f"SRC {src} is not an existing file or folder, nor a Hub repo id (owner/name).")


def _refuse_original_options(options: OriginalOptions | None, what: str) -> None:
    if options is not None:
        raise ConversionError(
            f"--num-attention-heads, --decoder-num-attention-heads, --num-frames and --spectrogram-length apply to "
            f"original checkpoints only; {what} has a config.json that sets them."
        )


# ---- transformers-format sources ------------------------------------------------------------------------------------


def _download_hub_checkpoint(repo_id: str, revision: str | None) -> Path:
    """Download the config, the processor config, the card and the weights (one format, shards included) of a Hub
    repo into the Hub cache; return its snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    local_files_only = read_from_cache_only(repo_id, revision, f"SRC {repo_id}")
    logger.info("Downloading %s from the Hub", repo_id)
    try:
        for weights in _HUB_WEIGHT_PATTERNS:  # the first format the repo has, as from_pretrained would read it
            folder = Path(
                snapshot_download(
                    repo_id,
                    revision=revision,
                    allow_patterns=[*_HUB_FILES, *weights],
                    local_files_only=local_files_only,
                )
            )
            if any(any(folder.glob(pattern)) for pattern in weights):
                break
    except RepositoryNotFoundError as error:
        raise ConversionError(
            f"SRC {repo_id}: no such Hub repo, or it is private or gated and needs a token."
        ) from error
    except RevisionNotFoundError as error:
        raise ConversionError(f"SRC {repo_id}: the repo has no revision {revision!r}.") from error
    except HfHubHTTPError as error:
        raise ConversionError(f"SRC {repo_id}: download from the Hub failed: {error}") from error
    if not (folder / "config.json").is_file():
        raise ConversionError(
            f"SRC {repo_id}: no config.json found on the Hub (or in the local cache when offline); a "
            "transformers-format TVLT repo has one."
        )
    return folder


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConversionError(f"{path} is not a readable JSON file: {error}") from error


def _load_legacy(folder: Path, source: str) -> LoadedCheckpoint:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ConversionError(
            f"SRC {source} is a folder without config.json: expected a transformers-format TVLT folder (config.json "
            "and model.safetensors or pytorch_model.bin) or an original TVLT checkpoint file."
        )
    config_dict = _read_json(config_file)
    model_type = config_dict.get("model_type")
    if model_type != TvltConfig.model_type:
        raise ConversionError(
            f"SRC {source}: config.json has model_type {model_type!r}, not 'tvlt'; this is not a TVLT checkpoint."
        )
    try:
        config = TvltConfig.from_pretrained(folder)
    except (ValueError, TypeError) as error:
        raise ConversionError(f"SRC {source}: config.json is not a valid TVLT config: {error}") from error
    weight_files = find_weight_files(folder)
    keys = [key for path in weight_files for key in tensor_specs(path)]
    architecture = _legacy_architecture(config_dict, keys, source)
    # ours first: code-running pickles and wrong shapes are refused before any allocation, in a line naming the key
    check_checkpoint(ARCHITECTURES[architecture], config, weight_files, f"SRC {source}")
    # not from_pretrained(output_loading_info=True): it casts all tensors to one dtype; a conversion keeps each as is
    state_dict = {}
    for path in weight_files:
        state_dict.update(read_weight_file(path))
    # 4.40.2 ignored tensors its class had no place for; so does the conversion, saying which
    model = instantiate(architecture, config, state_dict, source, drop_unexpected=True)
    processor = build_processor(config, original=False, source_folder=folder)
    return LoadedCheckpoint(
        model=model,
        processor=processor,
        kind=KIND_LEGACY,
        description=f"transformers-format TVLT checkpoint ({architecture})",
        source=source,
        license=_card_license(folder / "README.md"),
        processor_saved=any((folder / name).is_file() for name in PROCESSOR_CONFIG_FILES),
    )


def _legacy_architecture(config_dict: dict, keys: list[str], source: str) -> str:
    named = [name for name in config_dict.get("architectures") or [] if name in ARCHITECTURES]
    if named:
        return named[0]
    # no (known) architecture recorded: the heads in the weights decide
    if any(key.startswith("classifier.") for key in keys):
        return CLASSIFIER_ARCHITECTURE
    if any(key.startswith(("matching_head.", "decoder.", "pixel_mae_head.")) for key in keys):
        return PRETRAINING_ARCHITECTURE
    if any(key.startswith(("pixel_embeddings.", "tvlt.")) for key in keys):
        return "TvltModel"
    raise ConversionError(f"SRC {source}: the weights hold no TVLT parameters (e.g. {_first_keys(keys)}).")


def _card_license(readme: Path) -> str | None:
    """The `license` of a model card's metadata, if any (kept for the converted repo's card)."""
    if not readme.is_file():
        return None
    try:
        # huggingface_hub's card parser; ModelCard.load would also warn about every README without metadata
        metadata = metadata_load(readme) or {}
    except (ValueError, yaml.YAMLError) as error:  # not UTF-8, not YAML, or not a mapping
        reason = first_line(error)
        logger.warning("%s: unreadable card metadata (%s); using the default license.", readme, reason)
        return None
    license = metadata.get("license")
    return license if isinstance(license, str) and license.strip() else None


# ---- original research checkpoints ----------------------------------------------------------------------------------


def _load_original(path: Path, options: OriginalOptions) -> LoadedCheckpoint:
    source = str(path)
    logger.info("Reading %s (%.1f MB)", source, path.stat().st_size / 2**20)
    state_dict = unwrap_original_checkpoint(_read_checkpoint_file(path), source)
    if not looks_like_original(state_dict):
        if any(".attention.attention.query." in key for key in state_dict):
            raise ConversionError(
                f"SRC {source} is a transformers-format TVLT state dict; convert the folder holding it and its "
                "config.json instead."
            )
        raise ConversionError(
            f"SRC {source} is not a TVLT checkpoint: expected the original model's keys (`patch_embed_v.proj.weight`, "
            f"`blocks.N.attn.qkv.weight`, ...), found {_first_keys(state_dict)}."
        )
    layout = original_layout(state_dict)
    config = original_config(state_dict, layout, options)
    logger.info("Converting %d tensors: %s", len(state_dict), layout.describe())
    converted = convert_original_state_dict(state_dict, layout, config)
    model = instantiate(layout.architecture, config, converted, source)
    processor = build_processor(config, original=True, source_folder=None)
    return LoadedCheckpoint(
        model=model, processor=processor, kind=KIND_ORIGINAL, description=layout.describe(), source=path.name
    )


def read_weight_file(path: Path) -> dict:
    """Tensors of a safetensors or PyTorch file, read without running pickled code (`weights_only=True`)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except (SafetensorError, OSError) as error:
            raise ConversionError(f"{path} is not a readable safetensors file: {error}") from error
    checkpoint = _read_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ConversionError(f"{path} does not hold a state dict of tensors.")
    return checkpoint


def _read_checkpoint_file(path: Path):
    if path.suffix == ".safetensors":
        return read_weight_file(path)
    return load_weights_only(path)


def instantiate(
    architecture: str, config: TvltConfig, state_dict: dict, source: str, drop_unexpected: bool = False
) -> TvltPreTrainedModel:
    """
    Build `architecture` with every parameter from `state_dict`. Tensors it has no place for are an error, or with
    `drop_unexpected` (transformers' own loading behaviour) dropped with a warning.
    """
    model_class = ARCHITECTURES[architecture]
    config.architectures = [architecture]
    # on the meta device nothing is initialised: every parameter comes from the checkpoint
    model = build_on_meta(model_class, config, f"SRC {source}")
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if unexpected and drop_unexpected and not missing:
        logger.warning(
            "%s has no place for %d tensors of SRC, dropped: %s",
            architecture,
            len(unexpected),
            _first_keys(unexpected),
        )
        state_dict = {key: value for key, value in state_dict.items() if key in expected}
        unexpected = []
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"missing {_first_keys(missing)}")
        if unexpected:
            details.append(f"unexpected {_first_keys(unexpected)}")
        raise ConversionError(f"SRC {source}: the weights do not fit {architecture}: {'; '.join(details)}.")
    check_fit(model, specs_of(state_dict), config, f"SRC {source}", "the checkpoint")
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as error:
        raise ConversionError(f"SRC {source}: the weights do not fit {architecture}: {error}") from error
    left_on_meta = [name for name, tensor in (*model.named_parameters(), *model.named_buffers()) if tensor.is_meta]
    if left_on_meta:
        raise ConversionError(
            f"SRC {source}: {architecture} has tensors the checkpoint cannot fill: {_first_keys(left_on_meta)}."
        )
    return model.eval()


def _first_keys(keys, limit: int = 6) -> str:
    keys = list(keys)
    shown = ", ".join(f"`{key}`" for key in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "") if keys else "nothing"


__all__ = [
    "KIND_LEGACY",
    "KIND_ORIGINAL",
    "ARCHITECTURES",
    "LoadedCheckpoint",
    "load_checkpoint",
    "read_weight_file",
    "instantiate",
]
