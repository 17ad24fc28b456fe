"""Loading a command's `--model`: the torch-free checks of the argument, its config, its kind (a classifier or the
pre-training heads) and its weights checked against the config before `from_pretrained` allocates anything. Every
failure is one `CheckpointError` line that starts with `--model`."""

import os
import re

from ..remote_code_tvlt import CLASSIFIER_ARCHITECTURE, PRETRAINING_ARCHITECTURE
from .errors import CheckpointError, first_line
from .layout import PROCESSOR_CONFIG_FILES, WEIGHT_FILES


CLASSIFICATION = "classification"
PRETRAINING = "pretraining"

# a Hub repo id: "name" or "owner/name" (what huggingface_hub accepts)
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
# (model, revision) -> whether its files come from the local cache only: decided once, by its config's load
_CACHE_ONLY: dict[tuple[str, str | None], bool] = {}


def hub_options(model: str, revision: str | None) -> dict:
    """The locating options for every load of `--model` after its config (weights, model, processor, pipeline):
    `revision`, and `local_files_only=True` when its config's load found the Hub unreachable and used the cache.
    Without it each later load would ask the Hub again, and wait out its timeouts and retries when the network is
    down."""
    options = {"revision": revision}
    if _CACHE_ONLY.get((model, revision)):
        options["local_files_only"] = True
    return options


def check_model_argument(model: str) -> None:
    """The torch-free checks of `--model`: an existing checkpoint folder with a config.json, or a Hub repo id."""
    if os.path.exists(model):
        if not os.path.isdir(model):
            raise CheckpointError(
                f"--model {model} is a file; expected a checkpoint folder (with config.json) or a Hub id."
            )
        if not os.path.isfile(os.path.join(model, "config.json")):
            raise CheckpointError(f"--model {model} has no config.json: it is not a transformers checkpoint folder.")
    elif not _REPO_ID.match(model) or model.startswith((".", "~")):
        raise CheckpointError(f"--model {model}: no such checkpoint folder.")


def load_tvlt_config(model: str, revision: str | None = None):
    """The checkpoint's `TvltConfig`; a `CheckpointError` naming what is wrong with `--model` otherwise."""
    from transformers import AutoConfig

    check_model_argument(model)
    local_files_only = False
    if not os.path.exists(model):  # a Hub id: say at once when the Hub cannot be reached and nothing is cached
        from .hub import read_from_cache_only

        local_files_only = read_from_cache_only(model, revision, f"--model {model}")
    _CACHE_ONLY[(model, revision)] = local_files_only
    try:
        config = AutoConfig.from_pretrained(model, revision=revision, local_files_only=local_files_only)
    except (OSError, ValueError) as error:
        where = "it" if os.path.isdir(model) else "it is not a local folder, and the Hub"
        raise CheckpointError(f"--model {model}: cannot load its config ({where} says: {first_line(error)})") from None
    if getattr(config, "model_type", None) != "tvlt":
        raise CheckpointError(f"--model {model} is not a TVLT checkpoint (model_type {config.model_type!r}).")
    return config


def load_checkpoint(model: str, revision: str | None) -> tuple[object, str]:
    """`--model`'s config and its `checkpoint_kind`, after checking its weights against the config and that a local
    folder has the processor settings too (one-line `CheckpointError`s)."""
    config = load_tvlt_config(model, revision)
    kind = checkpoint_kind(config)
    check_model_weights(model, revision, config, kind)
    if os.path.isdir(model) and not any(os.path.isfile(os.path.join(model, name)) for name in PROCESSOR_CONFIG_FILES):
        raise CheckpointError(
            f"--model {model} has no processor settings ({' or '.join(PROCESSOR_CONFIG_FILES)}): save the processor "
            "the model was trained with next to it (`processor.save_pretrained(folder)`), or make the folder with "
            "`tvlt convert`."
        )
    return config, kind


def check_model_weights(model: str, revision: str | None, config, kind: str) -> None:
    """
    Compare `--model`'s config with the shapes and dtypes in its weight files before `from_pretrained` allocates
    anything (see `tvlt.checkpoints.preflight`): a code-running pickle, a wrong shape or dtype or an absurd config is a
    one-line `CheckpointError` naming the key or field.
    """
    from ..modeling_tvlt import TvltForAudioVisualClassification, TvltForPreTraining
    from .preflight import check_checkpoint

    model_class = TvltForAudioVisualClassification if kind == CLASSIFICATION else TvltForPreTraining
    check_checkpoint(model_class, config, _weight_files(model, revision), f"--model {model}")


def _weight_files(model: str, revision: str | None) -> list:
    """The weight files `from_pretrained` reads: in the folder, or downloaded into the Hub cache (read from there)."""
    from pathlib import Path

    from .preflight import find_weight_files, shard_names

    if os.path.isdir(model):
        return find_weight_files(Path(model))
    from transformers.utils import cached_file

    def fetch(name: str):
        try:
            path = cached_file(
                model, name, **hub_options(model, revision), _raise_exceptions_for_missing_entries=False
            )
        except OSError as error:
            raise CheckpointError(f"--model {model}: cannot download {name}: {first_line(error)}") from None
        return Path(path) if path else None

    for name in WEIGHT_FILES:
        path = fetch(name)
        if path is None:
            continue
        if not name.endswith(".index.json"):
            return [path]
        shards = [fetch(shard) for shard in shard_names(path)]
        if None in shards:
            raise CheckpointError(f"--model {model}: {name} names shards the repo does not have.")
        return shards
    raise CheckpointError(
        f"--model {model} has a config.json but no weights: expected one of {', '.join(WEIGHT_FILES)}."
    )


def checkpoint_kind(config) -> str:
    """`CLASSIFICATION` (a fine-tuned head) or `PRETRAINING` (matching head and/or MAE decoder)."""
    architectures = set(config.architectures or [])
    if CLASSIFIER_ARCHITECTURE in architectures:
        return CLASSIFICATION
    if PRETRAINING_ARCHITECTURE in architectures:
        return PRETRAINING
    if not architectures and any(label != f"LABEL_{i}" for i, label in config.id2label.items()):
        return CLASSIFICATION  # an old config without `architectures`, but with labels
    if not architectures:
        return PRETRAINING
    raise CheckpointError(
        f"the checkpoint's architecture ({', '.join(sorted(architectures))}) has neither a classifier nor the "
        "pre-training heads."
    )


__all__ = [
    "CLASSIFICATION",
    "PRETRAINING",
    "check_model_argument",
    "check_model_weights",
    "checkpoint_kind",
    "hub_options",
    "load_checkpoint",
    "load_tvlt_config",
]
