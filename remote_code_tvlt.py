# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""What makes a folder a self-contained TVLT remote-code repo: its code files, `auto_map`s and custom pipeline.

Hub code file: it imports only the standard library, so every TVLT code file can import it.

The code files import one another leaves-up, without a cycle (a test checks): media_tvlt and remote_code_tvlt at the
bottom, then configuration_tvlt, then modeling_tvlt and processing_utils_tvlt (what the two processors share), the
processors and inputs_tvlt, with pipeline_tvlt and retrieval_tvlt on top. Each file's own imports say which code
files it needs.

Fetch lists. `trust_remote_code` loads a class's module together with the code files named in its `from .x import`
lines, read as text (so lines under `if TYPE_CHECKING:` count too). From the Hub it follows the named files' own
lines as well; from a local folder only since transformers 5.10 (5.0-5.9 copy just the files the loaded module
names itself). `save_pretrained` of a remote-code class copies its module and, recursively, the files named there.
A saved TVLT config names every TVLT Auto class (below), so whichever class is loaded, all of `CODE_FILES` must come
with it: each file of `ENTRY_CODE_FILES` ends with a fetch list, an `if TYPE_CHECKING:` block (never run) that names
the code files it does not import itself. `python scripts/fetch_lists.py` writes these blocks from the two tuples
below; `tests/test_remote_code.py` fails while one is stale and proves the fetching on a local folder and a Hub
cache. Adding a code file: one line in `CODE_FILES` (and in `ENTRY_CODE_FILES` when users load a class of it by
name), then run the script. The other code files name only what they import.

A class carries one `_auto_class`, so transformers writes only that class's entry into `auto_map`; the save hooks
(`TvltConfig.save_pretrained`, `TvltProcessor.save_pretrained`) call `set_model_remote_code_entries` or
`set_processor_remote_code_entries` first, so that a saved model config names every Auto class and a saved processor
config every processor Auto class.
"""

import copy
import shutil
from pathlib import Path


# Every code file of a TVLT repo, copied into each converted or saved repo
CODE_FILES = (
    "configuration_tvlt.py",
    "modeling_tvlt.py",
    "media_tvlt.py",
    "processing_utils_tvlt.py",
    "feature_extraction_tvlt.py",
    "image_processing_tvlt.py",
    "processing_tvlt.py",
    "inputs_tvlt.py",
    "pipeline_tvlt.py",
    "retrieval_tvlt.py",
    "embedding_tvlt.py",
    "remote_code_tvlt.py",
)

# The files whose classes an Auto class, `pipeline()` or `get_class_from_dynamic_module` loads: each ends with a fetch
# list naming the rest of CODE_FILES (see the docstring)
ENTRY_CODE_FILES = (
    "configuration_tvlt.py",
    "modeling_tvlt.py",
    "feature_extraction_tvlt.py",
    "image_processing_tvlt.py",
    "processing_tvlt.py",
    "pipeline_tvlt.py",
    "retrieval_tvlt.py",
    "embedding_tvlt.py",
)

# The model classes a checkpoint's `architectures` names: the bare encoder, the one with the pre-training heads
# (vision-audio matching, MAE decoder) and the classifier; each with the Auto class that loads it
CLASSIFIER_ARCHITECTURE = "TvltForAudioVisualClassification"
PRETRAINING_ARCHITECTURE = "TvltForPreTraining"
ARCHITECTURES = {
    "TvltModel": "AutoModel",
    PRETRAINING_ARCHITECTURE: "AutoModelForPreTraining",
    CLASSIFIER_ARCHITECTURE: "AutoModelForVideoClassification",
}

MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_tvlt.TvltConfig",
    **{auto_class: f"modeling_tvlt.{name}" for name, auto_class in ARCHITECTURES.items()},
    # transformers has no audio-visual task: the classifier answers to both single-modality classification autos
    "AutoModelForAudioClassification": f"modeling_tvlt.{CLASSIFIER_ARCHITECTURE}",
}

PROCESSOR_AUTO_MAP = {
    "AutoProcessor": "processing_tvlt.TvltProcessor",
    "AutoImageProcessor": "image_processing_tvlt.TvltImageProcessor",
    "AutoFeatureExtractor": "feature_extraction_tvlt.TvltFeatureExtractor",
}

# config.json names the processors too: AutoProcessor/AutoImageProcessor/AutoFeatureExtractor fall back to the model
# config's auto_map when a processor config has none (e.g. a flat preprocessor_config.json written by 4.40.2)
CONFIG_AUTO_MAP = {**MODEL_AUTO_MAP, **PROCESSOR_AUTO_MAP}

# the attributes of TvltProcessor, saved as sub-dicts of processor_config.json
_PROCESSOR_PARTS = ("image_processor", "feature_extractor")

PIPELINE_TASK = "audio-visual-classification"
PIPELINE_CODE_FILE = "pipeline_tvlt.py"
CUSTOM_PIPELINES = {
    PIPELINE_TASK: {
        "impl": "pipeline_tvlt.TvltAudioVisualClassificationPipeline",
        "pt": ["AutoModelForVideoClassification"],
        "type": "multimodal",
    }
}


def code_directory() -> Path:
    """The folder holding this file and the other code files: the package, or transformers' remote-code cache."""
    return Path(__file__).resolve().parent


def custom_pipelines() -> dict:
    """The `custom_pipelines` entry of config.json; empty while the pipeline is not one of the code files."""
    return copy.deepcopy(CUSTOM_PIPELINES) if PIPELINE_CODE_FILE in CODE_FILES else {}


def _merged_auto_map(current, entries: dict) -> dict:
    # Keep entries of other Auto classes (e.g. a user's own head registered for AutoModelForSequenceClassification);
    # ours are written as plain "module.Class" references, which also drops any "repo--" prefix pointing elsewhere.
    merged = dict(current) if isinstance(current, dict) else {}
    merged.update(entries)
    return merged


def set_model_remote_code_entries(config) -> None:
    """Give a TVLT model config (object or dict) the full `auto_map` and the `custom_pipelines` entry."""
    pipelines = custom_pipelines()
    if isinstance(config, dict):
        config["auto_map"] = _merged_auto_map(config.get("auto_map"), CONFIG_AUTO_MAP)
        if pipelines:
            config["custom_pipelines"] = pipelines
        return
    config.auto_map = _merged_auto_map(getattr(config, "auto_map", None), CONFIG_AUTO_MAP)
    if pipelines:
        # a fresh copy: `pipeline()` replaces the class names in this dict by classes, which JSON cannot hold
        config.custom_pipelines = pipelines


def set_processor_remote_code_entries(processor) -> None:
    """
    Give a TVLT processor (object, or its `processor_config.json` as a dict) and its image processor and feature
    extractor the full processor `auto_map`: each of AutoProcessor, AutoImageProcessor and AutoFeatureExtractor reads
    its own level of the saved file.
    """
    if isinstance(processor, dict):
        levels = [processor] + [processor[name] for name in _PROCESSOR_PARTS if isinstance(processor.get(name), dict)]
        for level in levels:
            level["auto_map"] = _merged_auto_map(level.get("auto_map"), PROCESSOR_AUTO_MAP)
        return
    levels = [processor] + [getattr(processor, name) for name in _PROCESSOR_PARTS if hasattr(processor, name)]
    for level in levels:
        level.auto_map = _merged_auto_map(getattr(level, "auto_map", None), PROCESSOR_AUTO_MAP)


def copy_code_files(save_directory) -> list[Path]:
    """
    Copy every TVLT code file into `save_directory` (created if needed) and return the copied paths.

    Raises `FileNotFoundError` naming the missing files when this code came without some of them (e.g. a remote-code
    cache filled by a transformers version that did not fetch them).
    """
    source = code_directory()
    missing = [name for name in CODE_FILES if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"TVLT code files {', '.join(missing)} are missing from {source}; a TVLT repo needs all of "
            f"{', '.join(CODE_FILES)}."
        )
    destination = Path(save_directory)
    destination.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in CODE_FILES:
        if (source / name).resolve() != (destination / name).resolve():
            shutil.copyfile(source / name, destination / name)
        copied.append(destination / name)
    return copied


__all__ = [
    "CODE_FILES",
    "ENTRY_CODE_FILES",
    "ARCHITECTURES",
    "CLASSIFIER_ARCHITECTURE",
    "PRETRAINING_ARCHITECTURE",
    "MODEL_AUTO_MAP",
    "PROCESSOR_AUTO_MAP",
    "CONFIG_AUTO_MAP",
    "PIPELINE_TASK",
    "PIPELINE_CODE_FILE",
    "CUSTOM_PIPELINES",
    "code_directory",
    "custom_pipelines",
    "set_model_remote_code_entries",
    "set_processor_remote_code_entries",
    "copy_code_files",
]
