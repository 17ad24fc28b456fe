# Copyright 2023 The HuggingFace Inc. team; 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""TVLT audio feature extractor: waveforms (or audio files) to normalised log-mel spectrogram patches."""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Sequence

import numpy as np
from transformers.audio_utils import mel_filter_bank, window_function
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, logging

from .media_tvlt import is_path, load_audio, resample_audio
from .remote_code_tvlt import set_processor_remote_code_entries


logger = logging.get_logger(__name__)

PREPROCESSING_MODES = ("transformers", "original")

# The original research code keeps at most this many spectrogram frames (`audio_size` in its configs).
ORIGINAL_MAX_FRAMES = 1024
# Padding value of the original pipeline: the lowest normalised level, which its model reads as "no audio here".
ORIGINAL_PADDING_VALUE = -1.0
# A 2-D clip is (channels, samples) or (samples, channels): the channel axis is the short one, up to this many.
_MAX_AUDIO_CHANNELS = 16
# Integer PCM sample formats and the divisor that maps them onto [-1, 1].
_PCM_SCALES = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
# Frames per FFT batch: bounds the float64 working memory to a few tens of MB whatever the audio length.
_FRAMES_PER_CHUNK = 1024

# Keys that transformers 4.40.2 wrote into the one preprocessor_config.json shared with the image processor, plus
# values it derived and saved; none of them is a setting of this feature extractor.
_FOREIGN_CONFIG_KEYS = frozenset(
    {
        "do_resize",
        "size",
        "num_frames",
        "resample",
        "do_center_crop",
        "crop_size",
        "do_rescale",
        "rescale_factor",
        "do_normalize",
        "image_mean",
        "image_std",
        "image_processor_type",
        "_valid_processor_keys",
        "_valid_kwargs_names",
        "_processor_class",
        "freq_len",
        "hop_length",
    }
)


class TvltFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Constructs a TVLT audio feature extractor: mono waveforms (or audio files) become normalised log-mel spectrograms
    cut into 16x16 patches, with a mask telling real patches from padding.

    Two pipelines, picked by `preprocessing_mode` (saved with the extractor):

    - `"transformers"` (default): transformers 4.40.2's `TvltFeatureExtractor`, output for output. Log-mel of an STFT
      with reflect padding (Slaney mel filters up to 22.05 kHz), 80 dB dynamic range per clip, `(dB - 20) / 40`
      clipped to [-1, 1]; the last STFT frame is dropped, clips are cut at `spectrogram_length` frames and padded with
      `padding_value` to a whole number of patches.
    - `"original"`: the pipeline the released TVLT weights were trained with (zinengtang/TVLT), which used
      `librosa.feature.melspectrogram` with its defaults. The clip's mean (DC) is removed, the STFT pads with zeros
      and keeps its last frame, the mel filters reach half the sampling rate, at most 1024 frames are kept and the
      time axis is padded with -1.0 to a multiple of 16 frames; a patch whose values are all -1.0 (padding, or a
      silent stretch) is masked, as the original model does. `spectrogram_length` and `padding_value` are not used
      in this mode.

    Inputs at any sampling rate are resampled to `sampling_rate` (soxr, librosa's default resampler). Multi-channel
    clips are mixed down to mono by the mean of their channels. Integer arrays (int8/int16/int32) are PCM and scaled
    to [-1, 1]. Audio files are read with [`~media_tvlt.load_audio`].

    Args:
        spectrogram_length (`int`, *optional*, defaults to 2048):
            Maximum number of spectrogram frames (time steps) kept per clip in the `"transformers"` mode.
        num_channels (`int`, *optional*, defaults to 1):
            Number of channels of `audio_values`; TVLT uses one (a mono spectrogram).
        patch_size (`list[int]`, *optional*, defaults to `[16, 16]`):
            Size (time, frequency) of an audio patch of the model.
        feature_size (`int`, *optional*, defaults to 128):
            Number of mel bins.
        sampling_rate (`int`, *optional*, defaults to 44100):
            Sampling rate (Hz) the spectrogram is computed at; other inputs are resampled to it.
        hop_length_to_sampling_rate (`int`, *optional*, defaults to 86):
            STFT hop length as a divisor of the sampling rate: `hop_length = sampling_rate // 86 = 512` at 44.1 kHz.
        n_fft (`int`, *optional*, defaults to 2048):
            Size of the Fourier transform (and of the Hann window).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value that pads spectrograms to the batch's length in the `"transformers"` mode.
        preprocessing_mode (`str`, *optional*, defaults to `"transformers"`):
            `"transformers"` (4.40.2's pipeline) or `"original"` (the pipeline the released weights were trained with).
    """

    model_input_names = ["audio_values", "audio_mask"]

    def __init__(
        self,
        spectrogram_length: int = 2048,
        num_channels: int = 1,
        patch_size: Sequence[int] = (16, 16),
        feature_size: int = 128,
        sampling_rate: int = 44100,
        hop_length_to_sampling_rate: int = 86,
        n_fft: int = 2048,
        padding_value: float = 0.0,
        preprocessing_mode: str = "transformers",
        **kwargs,
    ):
        for key in _FOREIGN_CONFIG_KEYS.intersection(kwargs):
            del kwargs[key]
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        _check_positive_int("spectrogram_length", spectrogram_length)
        _check_positive_int("feature_size", feature_size)
        _check_positive_int("sampling_rate", sampling_rate)
        _check_positive_int("hop_length_to_sampling_rate", hop_length_to_sampling_rate)
        _check_positive_int("n_fft", n_fft)
        if num_channels != 1:
            raise ValueError(f"`num_channels` must be 1 (TVLT takes a mono spectrogram), got {num_channels!r}.")
        if sampling_rate // hop_length_to_sampling_rate < 1:
            raise ValueError(
                f"`hop_length_to_sampling_rate` ({hop_length_to_sampling_rate}) must not exceed `sampling_rate` "
                f"({sampling_rate}): the hop length would be 0."
            )
        self.spectrogram_length = spectrogram_length
        self.num_channels = num_channels
        self.patch_size = _check_patch_size(patch_size)
        self.n_fft = n_fft
        self.hop_length_to_sampling_rate = hop_length_to_sampling_rate
        self.preprocessing_mode = _check_mode(preprocessing_mode)
        if feature_size % self.patch_size[1]:
            raise ValueError(
                f"`feature_size` ({feature_size}) must be a multiple of the frequency patch size {self.patch_size[1]}."
            )

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict, **kwargs):
        """Like the base class, but settings passed as keyword arguments apply even when the saved dict lacks them
        (a 4.40.2 config has no `preprocessing_mode`, for example)."""
        feature_extractor_dict = dict(feature_extractor_dict)
        saved_hop_length = feature_extractor_dict.get("hop_length")
        if "hop_length_to_sampling_rate" not in feature_extractor_dict and isinstance(saved_hop_length, int):
            # 4.40.2 saved the derived `hop_length` but not `hop_length_to_sampling_rate`, and reloading silently went
            # back to the default ratio (86); recover the ratio that gives the saved hop length.
            sampling_rate = feature_extractor_dict.get("sampling_rate", 44100)
            if saved_hop_length > 0 and sampling_rate // (sampling_rate // saved_hop_length or 1) == saved_hop_length:
                feature_extractor_dict["hop_length_to_sampling_rate"] = sampling_rate // saved_hop_length
        for name in _INIT_PARAMETERS.intersection(kwargs):
            feature_extractor_dict[name] = kwargs.pop(name)
        return super().from_dict(feature_extractor_dict, **kwargs)

    def save_pretrained(self, save_directory, push_to_hub: bool = False, **kwargs):
        """Save like the base class, as a Hub code repo: the config names every TVLT processor Auto class (transformers
        writes only this class's entry) and all TVLT code files are copied next to it."""
        set_processor_remote_code_entries(self)
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    @property
    def hop_length(self) -> int:
        """STFT hop length in samples (512 at 44.1 kHz)."""
        return self.sampling_rate // self.hop_length_to_sampling_rate

    @property
    def freq_len(self) -> int:
        """Number of patches along the frequency axis (8 for 128 mel bins)."""
        return self.feature_size // self.patch_size[1]

    @property
    def mel_filters(self) -> np.ndarray:
        """The mel filter bank of the current mode, of shape `(feature_size, 1 + n_fft // 2)` (4.40.2's layout)."""
        return self._filters()[1].T

    def __call__(
        self,
        raw_speech,
        return_tensors: str | TensorType | None = None,
        return_attention_mask: bool | None = True,
        sampling_rate: int | None = None,
        resample: bool = True,
        mask_audio: bool = False,
    ) -> BatchFeature:
        """
        Turn one clip or a batch of clips into model inputs.

        Args:
            raw_speech (`np.ndarray`, `torch.Tensor`, `list[float]`, `str`, `os.PathLike`, or a list of those):
                One clip or a batch. A 1-D array or a list of floats is one mono clip; a 2-D array is a batch of mono
                clips `(batch, samples)` (as in transformers 4.40.2); a 3-D array is a batch of multi-channel clips. In
                a list, each element is one clip: 1-D (mono), 2-D multi-channel (`(channels, samples)` or
                `(samples, channels)`, the channel axis being the short one), or the path of an audio or video file.
                Float values are expected in [-1, 1]; int8/int16/int32 arrays are PCM.
            return_tensors (`str` or [`~utils.TensorType`], *optional*):
                `"pt"` for PyTorch tensors, `"np"` for NumPy arrays; by default NumPy arrays.
            return_attention_mask (`bool`, *optional*, defaults to `True`):
                Whether to return `audio_mask`; `None` uses the extractor's `return_attention_mask` setting.
            sampling_rate (`int`, *optional*):
                Sampling rate of the array inputs (files carry their own). Defaults to the extractor's, with a warning,
                since a wrong rate silently changes the features.
            resample (`bool`, *optional*, defaults to `True`):
                Resample inputs at another rate to `self.sampling_rate`. With `False`, such inputs raise a `ValueError`
                instead (transformers 4.40.2's behaviour).
            mask_audio (`bool`, *optional*, defaults to `False`):
                Add `mask_audio=True` to the outputs, so that `TvltModel(**inputs)` masks audio patches at random
                (MAE pre-training).

        Returns:
            [`BatchFeature`] with:

            - **audio_values** -- `(batch_size, 1, time, feature_size)` float32 spectrograms, `time` a multiple of
              `patch_size[0]`.
            - **audio_mask** -- `(batch_size, time // patch_size[0] * feature_size // patch_size[1])` float32, 1 for
              real patches and 0 for padding (time-major, as the model orders its audio patches).
        """
        _check_mode(self.preprocessing_mode)  # a setting changed after construction is checked here
        waveforms = self._waveforms(raw_speech, sampling_rate, resample)
        spectrograms = self._normalised_log_mel(waveforms)

        time_patch = self.patch_size[0]
        if self.preprocessing_mode == "original":
            padding_value = ORIGINAL_PADDING_VALUE
        else:
            padding_value = self.padding_value
        max_time = max(_round_up(spectrogram.shape[0], time_patch) for spectrogram in spectrograms)
        audio_values = np.full((len(spectrograms), 1, max_time, self.feature_size), padding_value, dtype=np.float32)
        for row, spectrogram in zip(audio_values, spectrograms, strict=True):
            row[0, : spectrogram.shape[0]] = spectrogram

        data = {"audio_values": audio_values}
        if return_attention_mask is None:
            return_attention_mask = self.return_attention_mask
        if return_attention_mask:
            data["audio_mask"] = self._audio_mask(audio_values, spectrograms)
        batch = BatchFeature(data=data, tensor_type=return_tensors)
        if mask_audio:
            batch["mask_audio"] = True
        return batch

    # -- inputs -----------------------------------------------------------------------------------------------------

    def _waveforms(self, raw_speech, sampling_rate: int | None, resample: bool) -> list[np.ndarray]:
        """Each clip as a 1-D float32 waveform at `self.sampling_rate`."""
        clips = _split_clips(raw_speech)
        if sampling_rate is not None:
            _check_positive_int("sampling_rate", sampling_rate)
        elif any(not is_path(clip) for clip in clips):
            logger.warning(
                "It is strongly recommended to pass the `sampling_rate` argument to this function. "
                "Failing to do so can result in silent errors that might be hard to debug."
            )

        waveforms = []
        for index, clip in enumerate(clips):
            if is_path(clip):
                waveform, clip_rate = load_audio(clip)
                name = os.fspath(clip)
            else:
                waveform, clip_rate = _mono_float32(clip, index), sampling_rate or self.sampling_rate
                name = f"clip {index}" if len(clips) > 1 else "the clip"
            if clip_rate != self.sampling_rate:
                if not resample:
                    raise ValueError(
                        f"This feature extractor is set to support sampling rate of {self.sampling_rate}. {name} is "
                        f"sampled at {clip_rate} Hz; pass `resample=True` to resample it."
                    )
                waveform = resample_audio(waveform, clip_rate, self.sampling_rate)
            self._check_length(waveform, name)
            waveforms.append(waveform)
        return waveforms

    def _check_length(self, waveform: np.ndarray, name: str) -> None:
        if waveform.size == 0:
            raise ValueError(f"`raw_speech`: {name} is empty.")
        # frames of a centred STFT: 1 + len // hop; the "transformers" mode drops the last one
        kept_last = self.preprocessing_mode == "original"
        num_frames = waveform.size // self.hop_length + int(kept_last)
        if num_frames < self.patch_size[0]:
            min_samples = (self.patch_size[0] - int(kept_last)) * self.hop_length
            raise ValueError(
                f"`raw_speech`: {name} is too short: {waveform.size} samples at {self.sampling_rate} Hz give "
                f"{num_frames} spectrogram frames, less than one {self.patch_size[0]}-frame audio patch. TVLT needs "
                f"at least {min_samples} samples ({min_samples / self.sampling_rate:.3f} s)."
            )

    # -- spectrograms -----------------------------------------------------------------------------------------------

    def _filters(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64 Hann window, float32 mel filters `(1 + n_fft // 2, feature_size)`) for the current settings."""
        return _stft_filters(self.preprocessing_mode, self.sampling_rate, self.n_fft, self.feature_size)

    def _mel_power(self, waveforms: list[np.ndarray]) -> tuple[np.ndarray, list[slice]]:
        """Mel power spectra of all clips, computed as one batch of STFT frames.

        Returns:
            `(mel_power, rows)`: `mel_power` of shape `(total_frames, feature_size)` float32, and the rows of each clip.
        """
        window, filters = self._filters()
        n_fft, hop = self.n_fft, self.hop_length
        pad_mode = "constant" if self.preprocessing_mode == "original" else "reflect"

        # Lay the centre-padded clips out on one buffer, each starting on the hop grid, so that a single strided view
        # holds every STFT frame of the batch (plus a few frames straddling two clips, computed and dropped).
        segment_hops = [-(-(waveform.size + n_fft) // hop) for waveform in waveforms]
        offsets = np.cumsum([0] + segment_hops[:-1]) * hop
        buffer = np.zeros(sum(segment_hops) * hop + n_fft, dtype=np.float64)
        rows = []
        for offset, waveform in zip(offsets, waveforms, strict=True):
            if self.preprocessing_mode == "original":
                waveform = waveform - waveform.mean(dtype=np.float64)
            buffer[offset : offset + waveform.size + n_fft] = np.pad(waveform, n_fft // 2, mode=pad_mode)
            first = offset // hop
            rows.append(slice(first, first + 1 + waveform.size // hop))
        num_rows = (buffer.size - n_fft) // hop + 1
        frames = np.lib.stride_tricks.as_strided(
            buffer, shape=(num_rows, n_fft), strides=(hop * buffer.itemsize, buffer.itemsize), writeable=False
        )

        # The FFT runs in float64: a weak band next to a loud one loses all precision in float32. The mel product can
        # run in float32, since it only sums positive terms, whose relative precision float32 keeps.
        mel_power = np.empty((num_rows, filters.shape[1]), dtype=np.float32)
        chunk_rows = min(_FRAMES_PER_CHUNK, num_rows)
        windowed_chunk = np.empty((chunk_rows, n_fft), dtype=np.float64)
        power_chunk = np.empty((chunk_rows, n_fft // 2 + 1), dtype=np.float32)
        for start in range(0, num_rows, _FRAMES_PER_CHUNK):
            count = min(_FRAMES_PER_CHUNK, num_rows - start)
            windowed, power = windowed_chunk[:count], power_chunk[:count]
            np.multiply(frames[start : start + count], window, out=windowed)
            magnitude = np.abs(_rfft(windowed))
            np.square(magnitude, out=power, casting="same_kind")
            np.matmul(power, filters, out=mel_power[start : start + count])
        return mel_power, rows

    def _normalised_log_mel(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        """Each clip's normalised log-mel spectrogram, `(time, feature_size)` float32 in [-1, 1]."""
        mel_power, rows = self._mel_power(waveforms)
        # float32 keeps the decibels within 1e-5 dB (the power's relative precision is float32's)
        decibels = np.log10(np.maximum(mel_power, np.float32(1e-10)))
        decibels *= np.float32(10.0)
        original = self.preprocessing_mode == "original"
        spectrograms = []
        for clip_rows in rows:
            clip = decibels[clip_rows]
            # the 80 dB range is measured on the whole clip, before any frame is dropped or cut
            clip = np.maximum(clip, clip.max() - np.float32(80.0))
            clip = clip[:ORIGINAL_MAX_FRAMES] if original else clip[:-1][: self.spectrogram_length]
            spectrograms.append(np.clip((clip - np.float32(20.0)) / np.float32(40.0), -2.0, 0.0) + np.float32(1.0))
        return spectrograms

    def _audio_mask(self, audio_values: np.ndarray, spectrograms: list[np.ndarray]) -> np.ndarray:
        """`(batch, time_patches * freq_patches)` float32 mask, time-major like the model's audio patches."""
        time_patch, freq_patch = self.patch_size
        batch_size, _, time, freq = audio_values.shape
        if self.preprocessing_mode == "original":
            # The original model masks every patch whose mean is -1, i.e. whose values are all -1: padding, and
            # stretches quieter than the normalisation floor.
            patches = audio_values.reshape(batch_size, time // time_patch, time_patch, freq // freq_patch, freq_patch)
            mask = (patches != ORIGINAL_PADDING_VALUE).any(axis=(2, 4))
            return mask.reshape(batch_size, -1).astype(np.float32)
        lengths = np.array([math.ceil(spectrogram.shape[0] / time_patch) for spectrogram in spectrograms])
        mask = np.arange(time // time_patch)[None, :] < lengths[:, None]
        return np.repeat(mask, self.freq_len, axis=1).astype(np.float32)


# -- helpers --------------------------------------------------------------------------------------------------------


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_patch_size(patch_size) -> list[int]:
    if (
        not isinstance(patch_size, (list, tuple))
        or len(patch_size) != 2
        or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p <= 0 for p in patch_size)
    ):
        raise ValueError(f"`patch_size` must be two positive integers (time, frequency), got {patch_size!r}.")
    return [int(p) for p in patch_size]


def _check_mode(preprocessing_mode) -> str:
    if preprocessing_mode not in PREPROCESSING_MODES:
        raise ValueError(f"`preprocessing_mode` must be one of {PREPROCESSING_MODES}, got {preprocessing_mode!r}.")
    return preprocessing_mode


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@functools.lru_cache(maxsize=8)
def _stft_filters(preprocessing_mode: str, sampling_rate: int, n_fft: int, num_mel_filters: int):
    # 4.40.2 fixes the top of the filter bank at 22.05 kHz whatever the sampling rate; the original used librosa's
    # default, half the sampling rate (the same filters at 44.1 kHz, up to float32 rounding of librosa's copy)
    max_frequency = sampling_rate / 2 if preprocessing_mode == "original" else 22050.0
    window = window_function(n_fft, "hann").astype(np.float64)
    filters = mel_filter_bank(
        num_frequency_bins=1 + n_fft // 2,
        num_mel_filters=num_mel_filters,
        min_frequency=0.0,
        max_frequency=max_frequency,
        sampling_rate=sampling_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    filters = filters.astype(np.float32)  # see `_mel_power`: the mel product runs in float32
    for array in (window, filters):
        array.setflags(write=False)
    return window, filters


def _rfft(frames: np.ndarray) -> np.ndarray:
    """Real FFT along the last axis, on as many threads as torch may use (scipy's pocketfft), else numpy's."""
    try:
        import scipy.fft
    except ImportError:
        return np.fft.rfft(frames, axis=-1)
    return scipy.fft.rfft(frames, axis=-1, overwrite_x=True, workers=_num_threads())


def _num_threads() -> int:
    try:
        import torch
    except ImportError:
        return 1
    return max(1, torch.get_num_threads())


def _split_clips(raw_speech) -> list:
    """The clips of a single-clip or batched input, following 4.40.2's batching rules."""
    if is_path(raw_speech):
        return [raw_speech]
    if _is_tensor(raw_speech):
        raw_speech = raw_speech.detach().cpu().numpy()
    if isinstance(raw_speech, np.ndarray):
        if raw_speech.ndim == 1:
            return [raw_speech]
        if raw_speech.ndim in (2, 3):
            return list(raw_speech)  # a batch: of mono clips (2-D), of multi-channel clips (3-D)
        raise ValueError(
            f"`raw_speech` as an array must be 1-D (one clip), 2-D (a batch of mono clips) or 3-D (a batch of "
            f"multi-channel clips), got shape {raw_speech.shape}."
        )
    if isinstance(raw_speech, (list, tuple)):
        if len(raw_speech) == 0:
            raise ValueError("`raw_speech` is an empty list: pass at least one clip.")
        if all(isinstance(value, (int, float, np.number)) and not isinstance(value, bool) for value in raw_speech):
            return [raw_speech]  # a list of samples is one clip
        return list(raw_speech)
    raise TypeError(
        "`raw_speech` must be a waveform (np.ndarray, torch.Tensor, list of floats), the path of an audio or video "
        f"file, or a list of those; got {type(raw_speech).__name__}."
    )


def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _mono_float32(clip, index: int) -> np.ndarray:
    """One clip as a 1-D float32 waveform: integer PCM scaled to [-1, 1], channels averaged."""
    if _is_tensor(clip):
        clip = clip.detach().cpu().numpy()
    if isinstance(clip, (list, tuple)):
        try:
            clip = np.asarray(clip, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"`raw_speech`: clip {index} is not a list of numbers.") from None
    if not isinstance(clip, np.ndarray):
        raise TypeError(
            f"`raw_speech`: clip {index} must be an array, a list of floats or a file path, got {type(clip).__name__}."
        )
    if clip.dtype in _PCM_SCALES:
        clip = clip.astype(np.float32) / np.float32(_PCM_SCALES[clip.dtype])
    elif clip.dtype == np.uint8:  # 8-bit PCM is unsigned, centred on 128
        clip = (clip.astype(np.float32) - 128.0) / 128.0
    elif clip.dtype.kind != "f":
        raise TypeError(
            f"`raw_speech`: clip {index} has dtype {clip.dtype}; expected floats in [-1, 1] or int8/int16/int32 PCM."
        )
    if clip.ndim == 2:
        short_axis = int(np.argmin(clip.shape))
        if clip.shape[short_axis] > _MAX_AUDIO_CHANNELS or clip.shape[0] == clip.shape[1]:
            raise ValueError(
                f"`raw_speech`: clip {index} has shape {clip.shape}; a multi-channel clip must be (channels, samples) "
                f"or (samples, channels) with at most {_MAX_AUDIO_CHANNELS} channels."
            )
        clip = clip.mean(axis=short_axis, dtype=np.float64)
    elif clip.ndim != 1:
        raise ValueError(f"`raw_speech`: clip {index} must be 1-D (mono) or 2-D (multi-channel), got {clip.shape}.")
    clip = np.asarray(clip, dtype=np.float32)
    if not np.isfinite(clip).all():
        raise ValueError(f"`raw_speech`: clip {index} contains NaN or infinite values.")
    return clip


_INIT_PARAMETERS = frozenset(inspect.signature(TvltFeatureExtractor.__init__).parameters) - {"self", "kwargs"}

TvltFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")


def _name_every_code_file():  # never called
    """Names every TVLT code file, so that transformers fetches and saves them all with this one.

    For a local remote-code folder, transformers before 5.13 copies only the files that the loaded module itself
    imports (it reads the `from .x import` lines as text), and `save_pretrained` copies the same set (see
    remote_code_tvlt.py).
    """
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .inputs_tvlt import TvltDataCollator  # noqa: F401
    from .media_tvlt import load_audio  # noqa: F401
    from .modeling_tvlt import TvltModel  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_tvlt import TvltProcessor  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = ["ORIGINAL_MAX_FRAMES", "ORIGINAL_PADDING_VALUE", "PREPROCESSING_MODES", "TvltFeatureExtractor"]
