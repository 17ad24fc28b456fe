# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""What the TVLT image processor and feature extractor share: the preprocessing modes and the checks of their
settings, the keys of the one config file transformers 4.40.2 saved for both, reading saved settings sized to the model
beside them on every loading path, and saving as a Hub code repo."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os

import numpy as np
from transformers.utils import logging

from .configuration_tvlt import TvltConfig
from .remote_code_tvlt import set_processor_remote_code_entries


logger = logging.get_logger(__name__)


PREPROCESSING_MODES = ("transformers", "original")

# Keys that transformers 4.40.2 wrote into the one preprocessor_config.json both processors read, and that are no
# setting of the one reading them: the other one's settings, values derived and saved, and the saving's bookkeeping
# (`init_mask_generator`: a 4.40.2 argument of the image processor that did nothing).
_SAVED_FOR_BOTH = ("freq_len", "_processor_class", "_valid_processor_keys", "_valid_kwargs_names")
FOREIGN_CONFIG_KEYS = {
    "feature_extractor": frozenset({
        "do_resize", "size", "num_frames", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
        "do_normalize", "image_mean", "image_std", "image_processor_type", *_SAVED_FOR_BOTH,
    }),
    "image_processor": frozenset({
        "spectrogram_length", "num_channels", "feature_size", "sampling_rate", "hop_length_to_sampling_rate", "n_fft",
        "padding_value", "padding_side", "return_attention_mask", "feature_extractor_type", "hop_length",
        "init_mask_generator", *_SAVED_FOR_BOTH,
    }),
}  # fmt: skip


class SavesAsRemoteCode:
    """Mixin of the two sub-processors: `save_pretrained` writes a Hub code repo."""

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Save like the base class, as a Hub code repo: the config names every TVLT processor Auto class (transformers
        writes only this class's entry) and all TVLT code files are copied next to it."""
        set_processor_remote_code_entries(self)
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)


# `from_pretrained` options that locate files: the processors pass them on to find `config.json` beside their own
_LOCATING_OPTIONS = ("cache_dir", "force_download", "proxies", "token", "local_files_only", "revision", "subfolder")


def model_config_beside(pretrained_model_name_or_path, **kwargs) -> TvltConfig | None:
    """
    The TVLT model config saved with a processor: `config.json` in the same folder or Hub repo (found with the
    file-locating options among `kwargs`), or `None` when there is none, it is not a TVLT config or it does not load.
    """
    from transformers.utils import cached_file

    path = str(pretrained_model_name_or_path)
    options = {name: kwargs[name] for name in _LOCATING_OPTIONS if kwargs.get(name) is not None}
    if os.path.isfile(path):  # a processor config file given by its path
        path, options = os.path.dirname(path) or ".", {}
    try:
        resolved = cached_file(
            path,
            "config.json",
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **options,
        )
        if not resolved:
            return None
        with open(resolved, encoding="utf-8") as file:
            config_dict = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(config_dict, dict) or config_dict.get("model_type") != TvltConfig.model_type:
        return None
    try:
        return TvltConfig.from_dict(config_dict)
    except (ValueError, TypeError):
        return None


def processor_fit_message(source, changes: list[str]) -> str:
    """The one warning line of a processor whose saved settings were sized to its model (see `fit_image_settings`
    and `fit_audio_settings`)."""
    return (
        f"The processor settings saved in {source} do not fit the model in the config.json beside them; sized to the "
        f"model instead: {'; '.join(changes)}."
    )


def cap_to_model(settings: dict, changes: list[str], keep, saved: dict, name: str, current, model_value) -> None:
    """A length the model bounds (`num_frames`, `spectrogram_length`) in saved `settings`: the model's when the saved
    one is longer or was not saved (noted in `changes`); a shorter saved length stays, it fits the model."""
    if name in keep or current == model_value or (current < model_value and name in saved):
        return
    unsaved = "" if name in saved else " (not saved)"
    changes.append(f"{name} {current}{unsaved} -> {model_value}")
    settings[name] = model_value


class _Load:
    """One `from_pretrained` of a TVLT processor (or of an Auto class that may build one): where from, the model
    config beside it (read once, on first need) and what sizing changed, for the one warning at the end."""

    def __init__(self, source, kwargs: dict):
        self.source = source
        self.options = {name: kwargs[name] for name in _LOCATING_OPTIONS if kwargs.get(name) is not None}
        self.changes: list[str] = []
        self.sized: set[str] = set()
        self._config = _UNREAD

    @property
    def config(self) -> TvltConfig | None:
        if self._config is _UNREAD:
            self._config = model_config_beside(self.source, **self.options)
        return self._config


_UNREAD = object()
_current_load: contextvars.ContextVar[_Load | None] = contextvars.ContextVar("tvlt_processor_load", default=None)


@contextlib.contextmanager
def loading_from(pretrained_model_name_or_path, kwargs: dict):
    """
    Mark a `from_pretrained` of `pretrained_model_name_or_path` (with its `kwargs`), so that the TVLT processors built
    inside it size their saved settings to the model config beside them (`size_saved_settings`). Loads nested inside
    a load of the same source share it: `TvltProcessor` reads `config.json` once for both halves and warns once.
    """
    outer = _current_load.get()
    if outer is not None and str(outer.source) == str(pretrained_model_name_or_path):
        yield outer
        return
    load = _Load(pretrained_model_name_or_path, kwargs)
    token = _current_load.set(load)
    try:
        yield load
    finally:
        _current_load.reset(token)
    if load.changes:
        logger.warning(processor_fit_message(load.source, load.changes))


def size_saved_settings(kind: str, settings: dict, given, fit) -> dict:
    """
    The saved `settings` of a processor of `kind` ("image_processor" or "feature_extractor") as its `from_dict` is
    about to build it: when built inside a `loading_from` whose source has a TVLT `config.json`, a copy sized to that
    model (`fit`), the settings named in `given` (passed to `from_pretrained`) kept as given. Sized once per load.

    This is the one hook every loading path goes through: `from_pretrained` of the class, of `TvltProcessor` and of
    the Auto classes all end in `from_dict`, but only some hand over the source (transformers 5.25 made
    `AutoImageProcessor` and `AutoFeatureExtractor` read the file themselves and call `from_dict`); `loading_from`
    carries it there.
    """
    load = _current_load.get()
    if load is None or kind in load.sized:
        return settings
    load.sized.add(kind)
    if load.config is None:
        return settings
    settings = dict(settings)
    load.changes.extend(fit(settings, load.config, keep=frozenset(given)))
    return settings


def size_auto_class_loads(auto_class) -> None:
    """
    Make `auto_class.from_pretrained` (`AutoImageProcessor`, `AutoFeatureExtractor`) a `loading_from` of its source,
    so that a TVLT processor it builds is sized to the model beside it on every transformers 5.x (5.25 no longer calls
    the class's own `from_pretrained`). Idempotent; other models' processors are untouched.
    """
    original = auto_class.__dict__["from_pretrained"].__func__
    if getattr(original, "_tvlt_loading_from", False):
        return

    @functools.wraps(original)
    def from_pretrained(cls, *args, **kwargs):
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        with loading_from(source, kwargs):
            return original(cls, *args, **kwargs)

    from_pretrained._tvlt_loading_from = True
    auto_class.from_pretrained = classmethod(from_pretrained)


def check_preprocessing_mode(preprocessing_mode) -> str:
    if preprocessing_mode not in PREPROCESSING_MODES:
        raise ValueError(f"`preprocessing_mode` must be one of {PREPROCESSING_MODES}, got {preprocessing_mode!r}.")
    return preprocessing_mode


def check_positive_int(name: str, value) -> int:
    if not _is_positive_int(value):
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_patch_size(patch_size, axes: str) -> list[int]:
    """Two positive integers along `axes` ("height, width" or "time, frequency"), as a list."""
    if not isinstance(patch_size, (list, tuple)) or len(patch_size) != 2 or not all(map(_is_positive_int, patch_size)):
        raise ValueError(f"`patch_size` must be two positive integers ({axes}), got {patch_size!r}.")
    return [int(p) for p in patch_size]


def _is_positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value > 0


def is_tensor(value) -> bool:
    """Whether `value` is a torch tensor, without importing torch."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def num_threads() -> int:
    """The threads torch may use (1 without torch): the processors' FFTs and resizes use as many."""
    try:
        import torch
    except ImportError:
        return 1
    return max(1, torch.get_num_threads())


__all__ = [
    "PREPROCESSING_MODES",
    "FOREIGN_CONFIG_KEYS",
    "SavesAsRemoteCode",
    "cap_to_model",
    "check_patch_size",
    "check_positive_int",
    "check_preprocessing_mode",
    "is_tensor",
    "model_config_beside",
    "num_threads",
    "processor_fit_message",
    "loading_from",
    "size_auto_class_loads",
    "size_saved_settings",
]
