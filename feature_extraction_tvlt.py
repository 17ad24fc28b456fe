# Copyright 2023 The HuggingFace Inc. team; 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""TVLT audio feature extractor: waveforms (or audio files) to normalised log-mel spectrogram patches."""

from __future__ import annotations

import functools
import inspect
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from transformers.audio_utils import mel_filter_bank, window_function
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature
from transformers.utils import TensorType, logging

from .media_tvlt import is_path, load_audio, resample_audio
from .processing_utils_tvlt import (
    FOREIGN_CONFIG_KEYS,
    PREPROCESSING_MODES,
    SavesAsRemoteCode,
    cap_to_model,
    check_patch_size,
    check_positive_int,
    check_preprocessing_mode,
    is_tensor,
    loading_from,
    num_threads,
    size_saved_settings,
)


logger = logging.get_logger(__name__)

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
# Clips up to this many samples are padded whole for their STFT; longer ones a chunk's stretch at a time.
_WHOLE_CLIP_SAMPLES = 1 << 20
# The original pads the time axis by `16 - frames % 16` frames (1 to 16, never 0) before cutting it at 1024 frames.
ORIGINAL_TIME_PADDING = 16
# The original resampled with torchaudio.functional.resample's defaults: a Hann-windowed sinc reaching 6 zero crossings
# on each side (`lowpass_filter_width`), with its cutoff at 0.99 of the lower Nyquist frequency (`rolloff`).
_SINC_ZERO_CROSSINGS = 6
_SINC_ROLLOFF = 0.99
# Output samples per convolution call of that resampler: bounds its working memory on long clips.
_RESAMPLE_CHUNK_SAMPLES = 1 << 20
# Its filters are built whole (`new` phases x taps); rates sharing a tiny divisor (44100 and 44101 Hz) would need GBs.
_MAX_SINC_FILTER_SIZE = 1 << 27


class TvltFeatureExtractor(SavesAsRemoteCode, SequenceFeatureExtractor):
    r"""
    Constructs a TVLT audio feature extractor: mono waveforms (or audio files) become normalised log-mel spectrograms
    cut into 16x16 patches, with a mask telling real patches from padding.

    Two pipelines, picked by `preprocessing_mode` (saved with the extractor):

    - `"transformers"` (default): transformers 4.40.2's `TvltFeatureExtractor`, output for output. Log-mel of an STFT
      with reflect padding (Slaney mel filters up to 22.05 kHz), 80 dB dynamic range per clip, `(dB - 20) / 40`
      clipped to [-1, 1]; the last STFT frame is dropped, clips are cut at `spectrogram_length` frames and padded with
      `padding_value` to a whole number of patches.
    - `"original"`: the pipeline the released TVLT weights were trained with (zinengtang/TVLT), which used
      `librosa.feature.melspectrogram` with its defaults. Other sampling rates are resampled with torchaudio's
      windowed-sinc resampler ([`sinc_resample`]), each channel before the channels are averaged. The clip's mean (DC)
      is removed, the STFT pads with zeros and keeps its last frame, the mel filters reach half the sampling rate; the
      time axis always gets `16 - frames % 16` frames of -1.0 (so 32 frames become 48) and is then cut at 1024
      frames. A patch whose float32 mean is -1.0 (padding, or a stretch under the -60 dB floor) is masked, as the
      original model does. `spectrogram_length` and `padding_value` are not used in this mode.

    In the `"transformers"` mode, inputs at other sampling rates are resampled with soxr (librosa's default
    resampler). Multi-channel clips are mixed down to mono by the mean of their channels. Integer arrays
    (int8/int16/int32) are PCM and scaled to [-1, 1]. Audio files are read with [`~media_tvlt.load_audio`]. Long clips
    are processed a chunk of STFT frames at a time: the memory needed stays close to the waveform's own.

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
        hop_length (`int`, *optional*):
            Accepted (and saved, as 4.40.2 saved it) for configs that carry it, but derived: it must equal
            `sampling_rate // hop_length_to_sampling_rate`, else a `ValueError` says which ratio gives it. (4.40.2
            silently ignored a different value.)
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
        hop_length: int | None = None,
        **kwargs,
    ):
        for key in FOREIGN_CONFIG_KEYS["feature_extractor"].intersection(kwargs):
            del kwargs[key]
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        check_positive_int("spectrogram_length", spectrogram_length)
        check_positive_int("feature_size", feature_size)
        check_positive_int("sampling_rate", sampling_rate)
        check_positive_int("hop_length_to_sampling_rate", hop_length_to_sampling_rate)
        check_positive_int("n_fft", n_fft)
        if num_channels != 1:
            raise ValueError(f"`num_channels` must be 1 (TVLT takes a mono spectrogram), got {num_channels!r}.")
        if sampling_rate // hop_length_to_sampling_rate < 1:
            raise ValueError(
                f"`hop_length_to_sampling_rate` ({hop_length_to_sampling_rate}) must not exceed `sampling_rate` "
                f"({sampling_rate}): the hop length would be 0."
            )
        self.spectrogram_length = spectrogram_length
        self.num_channels = num_channels
        self.patch_size = check_patch_size(patch_size, "time, frequency")
        self.n_fft = n_fft
        self.hop_length_to_sampling_rate = hop_length_to_sampling_rate
        self.preprocessing_mode = check_preprocessing_mode(preprocessing_mode)
        if hop_length is not None:
            _check_hop_length(hop_length, sampling_rate, hop_length_to_sampling_rate)
        if feature_size % self.patch_size[1]:
            raise ValueError(
                f"`feature_size` ({feature_size}) must be a multiple of the frequency patch size {self.patch_size[1]}."
            )

    @classmethod
    def from_dict(cls, feature_extractor_dict: dict, **kwargs):
        """Like the base class, but settings passed as keyword arguments apply even when the saved dict lacks them
        (a 4.40.2 config has no `preprocessing_mode`, for example); inside a `from_pretrained` (this class's,
        `TvltProcessor`'s or an Auto class's) the saved settings are first sized to the model beside them."""
        # inside a `from_pretrained` (this class's, `TvltProcessor`'s or an Auto class's): sized to the model beside
        feature_extractor_dict = size_saved_settings(
            "feature_extractor", feature_extractor_dict, kwargs, fit_audio_settings
        )
        feature_extractor_dict = dict(feature_extractor_dict)
        saved_hop_length = feature_extractor_dict.get("hop_length")
        if "hop_length_to_sampling_rate" not in feature_extractor_dict and isinstance(saved_hop_length, int):
            # 4.40.2 saved the derived `hop_length` but not `hop_length_to_sampling_rate`, and reloading silently went
            # back to the default ratio (86); recover the ratio that gives the saved hop length.
            sampling_rate = feature_extractor_dict.get("sampling_rate", 44100)
            if saved_hop_length > 0 and sampling_rate // (sampling_rate // saved_hop_length or 1) == saved_hop_length:
                feature_extractor_dict["hop_length_to_sampling_rate"] = sampling_rate // saved_hop_length
        if {"sampling_rate", "hop_length_to_sampling_rate"}.intersection(kwargs) and "hop_length" not in kwargs:
            feature_extractor_dict.pop("hop_length", None)  # derived from the settings being replaced
        for name in _INIT_PARAMETERS.intersection(kwargs):
            feature_extractor_dict[name] = kwargs.pop(name)
        return super().from_dict(feature_extractor_dict, **kwargs)

    def to_dict(self) -> dict:
        """The settings, with the derived `hop_length` as 4.40.2 saved it (so that readers of its configs find it)."""
        output = super().to_dict()
        output["hop_length"] = self.hop_length
        return output

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """
        Load the saved settings like the base class, sized to the model when a TVLT `config.json` sits beside them
        (see `fit_audio_settings`), with one warning saying what changed. Settings passed here are kept as given.
        """
        with loading_from(pretrained_model_name_or_path, kwargs):
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

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
        check_preprocessing_mode(self.preprocessing_mode)  # a setting changed after construction is checked here
        waveforms = self._waveforms(raw_speech, sampling_rate, resample)
        spectrograms = self._normalised_log_mel(waveforms)

        time_patch = self.patch_size[0]
        if self.preprocessing_mode == "original":
            padding_value = ORIGINAL_PADDING_VALUE
            # The original always appends `16 - frames % 16` frames (1 to 16, so a whole number of patches gets one
            # more, all padding), then keeps at most 1024 frames.
            lengths = [
                _round_up(min(_round_up(s.shape[0] + 1, ORIGINAL_TIME_PADDING), ORIGINAL_MAX_FRAMES), time_patch)
                for s in spectrograms
            ]
        else:
            padding_value = self.padding_value
            lengths = [_round_up(spectrogram.shape[0], time_patch) for spectrogram in spectrograms]
        max_time = max(lengths)
        # not SequenceFeatureExtractor.pad: pad() pads with self.padding_value only and masks frames, not patches
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
            check_positive_int("sampling_rate", sampling_rate)
        elif any(not is_path(clip) for clip in clips):
            logger.warning(
                "It is strongly recommended to pass the `sampling_rate` argument to this function. "
                "Failing to do so can result in silent errors that might be hard to debug."
            )

        original = self.preprocessing_mode == "original"
        waveforms = []
        for index, clip in enumerate(clips):
            # The original pipeline resampled every channel and only then averaged them; here the transformers mode
            # mixes down first (half the resampling work, the same result within float rounding).
            if is_path(clip):
                channels, clip_rate = load_audio(clip, mono=not original)
                name = os.fspath(clip)
            else:
                channels, clip_rate = _float_channels(clip, index), sampling_rate or self.sampling_rate
                name = f"clip {index}" if len(clips) > 1 else "the clip"
            channels = channels if channels.ndim == 2 else channels[None]  # (channels, samples)
            if clip_rate != self.sampling_rate and not resample:
                raise ValueError(
                    f"This feature extractor is set to support sampling rate of {self.sampling_rate}. {name} is "
                    f"sampled at {clip_rate} Hz; pass `resample=True` to resample it."
                )
            if clip_rate != self.sampling_rate and original:
                # in float32, as the original's `torchaudio.load` output was
                channels = sinc_resample(channels.astype(np.float32, copy=False), clip_rate, self.sampling_rate)
            waveform = _mix_down(channels)
            if waveform.size and not (np.isfinite(waveform.min()) and np.isfinite(waveform.max())):  # NaN propagates
                raise ValueError(f"`raw_speech`: {name} contains NaN or infinite values.")
            if clip_rate != self.sampling_rate and not original:
                waveform = resample_audio(waveform, clip_rate, self.sampling_rate)
            self._check_length(waveform, name)
            waveforms.append(waveform)
        return waveforms

    def _check_length(self, waveform: np.ndarray, name: str) -> None:
        if waveform.size == 0:
            raise ValueError(f"`raw_speech`: {name} is empty.")
        if self.preprocessing_mode == "original":
            return  # the last STFT frame is kept there: every clip has one, padded to a patch as the original did
        # 4.40.2 drops the last of the 1 + len // hop frames of a centred STFT and pads the rest to a whole patch:
        # a clip shorter than one hop has no frame left, which 4.40.2 returned as an empty spectrogram
        if _num_stft_frames(waveform.size, self.n_fft, self.hop_length) < 2:
            raise ValueError(
                f"`raw_speech`: {name} is too short: {waveform.size} samples at {self.sampling_rate} Hz give no "
                f"spectrogram frame (the last frame of the STFT is dropped). TVLT needs at least {self.hop_length} "
                f"samples ({self.hop_length / self.sampling_rate:.3f} s)."
            )

    # -- spectrograms -----------------------------------------------------------------------------------------------

    def _filters(self) -> tuple[np.ndarray, np.ndarray]:
        """(float64 Hann window, float32 mel filters `(1 + n_fft // 2, feature_size)`) for the current settings."""
        return _stft_filters(self.preprocessing_mode, self.sampling_rate, self.n_fft, self.feature_size)

    def _normalised_log_mel(self, waveforms: list[np.ndarray]) -> list[np.ndarray]:
        """Each clip's normalised log-mel spectrogram, `(time, feature_size)` float32 in [-1, 1].

        All clips' STFT frames go through the FFT as one batch, a chunk of `_FRAMES_PER_CHUNK` frames at a time. The
        centre-padded clips lie one after another on the hop grid of a virtual buffer, so that every frame of the batch
        is a row of one strided view of it (plus a few rows straddling two clips, computed and dropped); only a chunk's
        stretch of that buffer exists at a time, so the memory stays a few tens of MB above the waveforms whatever
        their length. Of each clip, only the frames the output keeps are stored, and the running maximum of the others
        (the 80 dB range is measured on the whole clip, before any frame is dropped or cut).
        """
        # not audio_utils.spectrogram_batch: it holds the batch's whole STFT at once (5x this memory on 10 min,
        # docs/benchmarks.md)
        window, filters = self._filters()
        n_fft, hop = self.n_fft, self.hop_length
        original = self.preprocessing_mode == "original"
        clips = [_CentredClip(waveform, n_fft // 2, original) for waveform in waveforms]
        segment_hops = [-(-clip.size // hop) for clip in clips]
        offsets = np.cumsum([0] + segment_hops[:-1]) * hop
        ends = offsets + np.array([clip.size for clip in clips])
        num_rows = sum(segment_hops) + 1  # frames of the whole buffer, `sum(segment_hops) * hop + n_fft` samples
        states = []
        for offset, clip in zip(offsets, clips, strict=True):
            num_frames = _num_stft_frames(clip.size - 2 * (n_fft // 2), n_fft, hop)
            kept = min(num_frames, ORIGINAL_MAX_FRAMES) if original else min(num_frames - 1, self.spectrogram_length)
            first = offset // hop
            states.append(_ClipRows(first, first + num_frames, np.empty((kept, filters.shape[1]), np.float32)))

        # The FFT runs in float64: a weak band next to a loud one loses all precision in float32. The mel product can
        # run in float32, since it only sums positive terms, whose relative precision float32 keeps.
        chunk_rows = min(_FRAMES_PER_CHUNK, num_rows)
        stretch_chunk = np.empty((chunk_rows - 1) * hop + n_fft, dtype=np.float64)
        windowed_chunk = np.empty((chunk_rows, n_fft), dtype=np.float64)
        power_chunk = np.empty((chunk_rows, n_fft // 2 + 1), dtype=np.float32)
        mel_chunk = np.empty((chunk_rows, filters.shape[1]), dtype=np.float32)
        for start in range(0, num_rows, _FRAMES_PER_CHUNK):
            count = min(_FRAMES_PER_CHUNK, num_rows - start)
            low, high = start * hop, (start + count - 1) * hop + n_fft  # the buffer stretch these frames read
            stretch = stretch_chunk[: high - low]
            stretch.fill(0.0)
            for index in range(np.searchsorted(ends, low, side="right"), np.searchsorted(offsets, high)):
                begin, stop = max(low, offsets[index]), min(high, ends[index])
                clips[index].read(begin - offsets[index], stop - offsets[index], out=stretch[begin - low : stop - low])
            frames = np.lib.stride_tricks.as_strided(
                stretch, shape=(count, n_fft), strides=(hop * stretch.itemsize, stretch.itemsize), writeable=False
            )
            windowed, power, mel = windowed_chunk[:count], power_chunk[:count], mel_chunk[:count]
            np.multiply(frames, window, out=windowed)
            magnitude = np.abs(_rfft(windowed))
            np.square(magnitude, out=power, casting="same_kind")
            np.matmul(power, filters, out=mel)
            # float32 keeps the decibels within 1e-5 dB (the power's relative precision is float32's)
            decibels = np.log10(np.maximum(mel, np.float32(1e-10)))
            decibels *= np.float32(10.0)
            for state in states:
                state.take(decibels, start)

        spectrograms = []
        for state in states:
            clip = np.maximum(state.kept, state.peak - np.float32(80.0))
            spectrograms.append(np.clip((clip - np.float32(20.0)) / np.float32(40.0), -2.0, 0.0) + np.float32(1.0))
        return spectrograms

    def _audio_mask(self, audio_values: np.ndarray, spectrograms: list[np.ndarray]) -> np.ndarray:
        """`(batch, time_patches * freq_patches)` float32 mask, time-major like the model's audio patches."""
        time_patch, freq_patch = self.patch_size
        batch_size, _, time, freq = audio_values.shape
        if self.preprocessing_mode == "original":
            # The original model masks every patch whose mean is -1: padding, and stretches quieter than the
            # normalisation floor. It took the mean in float32 with torch's `avg_pool2d`, which on the CPU sums a
            # patch row by row; summed the same way here, a patch of -1 values and a few others within float32
            # rounding of -1 is masked as the original masked it.
            patches = audio_values.reshape(batch_size, time // time_patch, time_patch, freq // freq_patch, freq_patch)
            total = np.zeros((batch_size, time // time_patch, freq // freq_patch), dtype=np.float32)
            for row in range(time_patch):
                for column in range(freq_patch):
                    total += patches[:, :, row, :, column]
            mask = total / np.float32(time_patch * freq_patch) != np.float32(ORIGINAL_PADDING_VALUE)
            return mask.reshape(batch_size, -1).astype(np.float32)
        lengths = np.array([math.ceil(spectrogram.shape[0] / time_patch) for spectrogram in spectrograms])
        mask = np.arange(time // time_patch)[None, :] < lengths[:, None]
        return np.repeat(mask, self.freq_len, axis=1).astype(np.float32)


class _CentredClip:
    """A clip as its STFT reads it, in float64: `pad` samples of padding on each side, the clip's edges reflected
    (4.40.2), or zeros around the clip minus its mean (the original's DC removal). Read a stretch at a time, so that a
    padded copy of a long clip never exists whole."""

    def __init__(self, waveform: np.ndarray, pad: int, original: bool):
        self.waveform, self.pad = waveform, pad
        self.size = waveform.size + 2 * pad
        self.mean = waveform.mean(dtype=np.float64) if original else None
        self.whole = self.head = self.tail = None
        if waveform.size <= _WHOLE_CLIP_SAMPLES:
            centred = waveform if self.mean is None else waveform - self.mean
            self.whole = np.pad(centred, pad, mode="constant" if original else "reflect")
        elif not original:
            # reflecting `pad` samples reads only the `pad + 1` samples at each end of a clip longer than that
            self.head = np.pad(waveform[: pad + 1], (pad, 0), mode="reflect")[:pad]
            self.tail = np.pad(waveform[waveform.size - pad - 1 :], (0, pad), mode="reflect")[pad + 1 :]

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Write samples `[start, stop)` of the padded clip into `out` (zeros already, of length `stop - start`)."""
        if self.whole is not None:
            out[...] = self.whole[start:stop]
            return
        pad, length = self.pad, self.waveform.size
        low, high = max(start, pad), min(stop, pad + length)
        if low < high:
            target = out[low - start : high - start]
            if self.mean is None:
                target[...] = self.waveform[low - pad : high - pad]
            else:
                np.subtract(self.waveform[low - pad : high - pad], self.mean, out=target)
        if self.head is not None and start < pad:
            out[: min(stop, pad) - start] = self.head[start : min(stop, pad)]
        if self.tail is not None and stop > pad + length:
            low = max(start, pad + length)
            out[low - start :] = self.tail[low - pad - length : stop - pad - length]


class _ClipRows:
    """One clip's place among the batch's STFT rows `[first, stop)`, the decibels of the frames the output keeps
    (`kept`, its first rows), and the peak of all its frames."""

    def __init__(self, first: int, stop: int, kept: np.ndarray):
        self.first, self.stop, self.kept = first, stop, kept
        self.peak = np.float32(-np.inf)

    def take(self, decibels: np.ndarray, start: int) -> None:
        """Take this clip's part of the rows `[start, start + len(decibels))`."""
        low, high = max(self.first, start), min(self.stop, start + len(decibels))
        if low >= high:
            return
        self.peak = max(self.peak, decibels[low - start : high - start].max())
        kept_high = min(high, self.first + len(self.kept))
        if low < kept_high:
            self.kept[low - self.first : kept_high - self.first] = decibels[low - start : kept_high - start]


def _num_stft_frames(num_samples: int, n_fft: int, hop_length: int) -> int:
    """Frames of a centred STFT (`n_fft // 2` samples of padding on each side)."""
    return 1 + (num_samples + 2 * (n_fft // 2) - n_fft) // hop_length


# -- helpers --------------------------------------------------------------------------------------------------------


def _check_hop_length(hop_length, sampling_rate: int, ratio: int) -> None:
    check_positive_int("hop_length", hop_length)
    derived = sampling_rate // ratio
    if hop_length == derived:
        return
    fitting = sampling_rate // hop_length
    advice = (
        f"pass `hop_length_to_sampling_rate={fitting}` for a hop of {hop_length} samples"
        if fitting and sampling_rate // fitting == hop_length
        else f"no integer `hop_length_to_sampling_rate` gives a hop of {hop_length} samples at {sampling_rate} Hz"
    )
    raise ValueError(
        f"`hop_length` ({hop_length}) disagrees with `sampling_rate // hop_length_to_sampling_rate` = {sampling_rate} "
        f"// {ratio} = {derived}: the hop length follows from those two (transformers 4.40.2 ignored a different "
        f"`hop_length` silently); {advice}."
    )


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
    filters = filters.astype(np.float32)  # see `_normalised_log_mel`: the mel product runs in float32
    for array in (window, filters):
        array.setflags(write=False)
    return window, filters


def _rfft(frames: np.ndarray) -> np.ndarray:
    """Real FFT along the last axis, on as many threads as torch may use (scipy's pocketfft), else numpy's."""
    try:
        import scipy.fft
    except ImportError:
        return np.fft.rfft(frames, axis=-1)
    return scipy.fft.rfft(frames, axis=-1, overwrite_x=True, workers=num_threads())


def sinc_resample(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int) -> np.ndarray:
    """Resample as `torchaudio.functional.resample` does with its defaults, the resampler of the original pipeline.

    A port of torchaudio's kernel computed with torch (torchaudio itself is not needed): the rates are divided by their
    greatest common divisor (`orig` and `new` below), and each of the `new` output phases is a Hann-windowed sinc
    filter cut at `0.99 * min(orig, new)`, reaching 6 zero crossings on each side. The signal is zero-padded and
    convolved with the `new` filters at a stride of `orig` input samples, in the waveform's dtype (float32 for the
    original's `torchaudio.load` output), and cut to `ceil(new * length / orig)` samples. Long signals are convolved
    in chunks of about a million output samples, so the working memory stays small.

    Args:
        waveform (`np.ndarray` of shape `(..., num_samples)`, float32 or float64):
            Signals to resample along their last axis (e.g. `(channels, samples)`).
        orig_sampling_rate (`int`), target_sampling_rate (`int`):
            Sampling rates in Hz.

    Returns:
        `np.ndarray` of shape `(..., ceil(num_samples * target / orig))`, in the waveform's dtype.
    """
    for name, rate in (("orig_sampling_rate", orig_sampling_rate), ("target_sampling_rate", target_sampling_rate)):
        check_positive_int(name, rate)
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    try:
        import torch
    except ImportError:
        raise ImportError(
            "Resampling in the original preprocessing mode needs `torch` (`pip install torch`)."
        ) from None
    divisor = math.gcd(int(orig_sampling_rate), int(target_sampling_rate))
    orig, new = int(orig_sampling_rate) // divisor, int(target_sampling_rate) // divisor
    filter_size = new * (2 * math.ceil(_SINC_ZERO_CROSSINGS / _SINC_ROLLOFF * orig / min(orig, new)) + orig)
    if filter_size > _MAX_SINC_FILTER_SIZE:
        raise ValueError(
            f"Resampling {orig_sampling_rate} Hz to {target_sampling_rate} Hz as torchaudio does (the original "
            f"preprocessing mode) needs {new} filters of {filter_size // new} taps "
            f"({filter_size * 4 / 2**30:.1f} GiB): "
            "the rates share too small a divisor. Resample the audio to a common rate (e.g. 48000 Hz) first."
        )
    dtype = torch.float64 if waveform.dtype == np.float64 else torch.float32
    kernel, half_width = _sinc_kernel(orig, new, dtype)

    signals = torch.from_numpy(
        np.ascontiguousarray(waveform, dtype=np.float64 if dtype == torch.float64 else np.float32)
    )
    leading_shape, length = signals.shape[:-1], signals.shape[-1]
    signals = signals.reshape(-1, length)
    output_length = math.ceil(new * length / orig)  # torchaudio's expression, float rounding included
    # The padded signal is [half_width zeros, signal, half_width + orig zeros]; output block k (`new` samples) reads
    # its `2 * half_width + orig` samples from k * orig on.
    num_blocks = length // orig + 1
    blocks_per_chunk = max(1, _RESAMPLE_CHUNK_SAMPLES // new)
    resampled = np.empty(
        (signals.shape[0], output_length), dtype=waveform.dtype if dtype == torch.float64 else np.float32
    )
    for first in range(0, num_blocks, blocks_per_chunk):
        last = min(num_blocks, first + blocks_per_chunk)
        start = first * orig - half_width  # in signal samples; negative in the left padding
        stop = length + half_width + orig if last == num_blocks else (last - 1) * orig + kernel.shape[-1] - half_width
        piece = signals[:, max(start, 0) : min(stop, length)]
        piece = torch.nn.functional.pad(piece, (max(0, -start), max(0, stop - length)))
        blocks = torch.nn.functional.conv1d(piece[:, None], kernel, stride=orig)  # [signals, new, blocks]
        samples = blocks.transpose(1, 2).reshape(signals.shape[0], -1)
        begin = first * new
        end = min(output_length, begin + samples.shape[1])
        resampled[:, begin:end] = samples[:, : end - begin].numpy()
        if end == output_length:
            break
    return resampled.reshape(*leading_shape, output_length)


def _sinc_kernel(orig: int, new: int, dtype) -> tuple:
    """torchaudio's `sinc_interp_hann` filters for reduced rates `orig` -> `new`: `([new, 1, taps], half_width)`.

    The arithmetic follows torchaudio's, step for step, in `dtype`, so the filters agree to the last bit or so.
    """
    import torch

    cutoff = min(orig, new) * _SINC_ROLLOFF
    half_width = math.ceil(_SINC_ZERO_CROSSINGS * orig / cutoff)
    # time of each input tap relative to each output phase, in units of the filter's zero crossings
    taps = torch.arange(-half_width, half_width + orig, dtype=dtype)[None, None] / orig
    times = torch.arange(0, -new, -1, dtype=dtype)[:, None, None] / new + taps
    times *= cutoff
    times = times.clamp_(-_SINC_ZERO_CROSSINGS, _SINC_ZERO_CROSSINGS)
    window = torch.cos(times * math.pi / _SINC_ZERO_CROSSINGS / 2) ** 2
    times *= math.pi
    kernel = torch.where(times == 0, torch.tensor(1.0).to(times), times.sin() / times)
    kernel *= window * (cutoff / orig)
    return kernel, half_width


def _split_clips(raw_speech) -> list:
    """The clips of a single-clip or batched input, following 4.40.2's batching rules."""
    if is_path(raw_speech):
        return [raw_speech]
    if is_tensor(raw_speech):
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


def _float_channels(clip, index: int) -> np.ndarray:
    """One clip as `(channels, samples)` floats (float64 stays float64, other floats become float32), integer PCM
    scaled to [-1, 1]."""
    if is_tensor(clip):
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
    elif clip.dtype != np.float64:
        clip = clip.astype(np.float32, copy=False)
    if clip.ndim == 1:
        return clip[None]
    if clip.ndim != 2:
        raise ValueError(f"`raw_speech`: clip {index} must be 1-D (mono) or 2-D (multi-channel), got {clip.shape}.")
    short_axis = int(np.argmin(clip.shape))
    if clip.shape[short_axis] > _MAX_AUDIO_CHANNELS or clip.shape[0] == clip.shape[1]:
        raise ValueError(
            f"`raw_speech`: clip {index} has shape {clip.shape}; a multi-channel clip must be (channels, samples) "
            f"or (samples, channels) with at most {_MAX_AUDIO_CHANNELS} channels."
        )
    return clip if short_axis == 0 else clip.T


def _mix_down(channels: np.ndarray) -> np.ndarray:
    """`(channels, samples)` to a 1-D float32 waveform, the mean of the channels (computed in float64)."""
    if channels.shape[0] == 1:
        return np.asarray(channels[0], dtype=np.float32)
    return channels.mean(axis=0, dtype=np.float64).astype(np.float32)


_INIT_PARAMETERS = frozenset(inspect.signature(TvltFeatureExtractor.__init__).parameters) - {"self", "kwargs"}


def fit_audio_settings(settings: dict, config, keep=()) -> list[str]:
    """
    Size saved feature-extractor `settings` (changed in place) to a TVLT model `config`; return what changed, as text.

    A setting is the model's when it contradicts the model: another number of mel bins or other patches, or a longer
    spectrogram than the model's audio positions; `spectrogram_length` is also the model's when it was not saved.
    Settings named in `keep` stay.
    """
    saved = {name: settings[name] for name in ("feature_size", "patch_size", "spectrogram_length") if name in settings}
    try:
        current = TvltFeatureExtractor(**saved)
    except (ValueError, TypeError):  # invalid saved values: the feature extractor itself refuses them, naming them
        return []
    changes = []
    if "feature_size" not in keep and current.feature_size != config.frequency_length:
        changes.append(f"feature_size (mel bins) {current.feature_size} -> {config.frequency_length}")
        settings["feature_size"] = config.frequency_length
    patch_size = list(config.audio_patch_size)
    if "patch_size" not in keep and list(current.patch_size) != patch_size:
        changes.append(f"audio patch_size {list(current.patch_size)} -> {patch_size}")
        settings["patch_size"] = patch_size
    cap_to_model(
        settings, changes, keep, saved, "spectrogram_length", current.spectrogram_length, config.spectrogram_length
    )
    return changes


TvltFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .inputs_tvlt import TvltClipPreparer  # noqa: F401
    from .modeling_tvlt import TvltPreTrainedModel  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_tvlt import TvltProcessor  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = [
    "ORIGINAL_MAX_FRAMES",
    "ORIGINAL_PADDING_VALUE",
    "ORIGINAL_TIME_PADDING",
    "PREPROCESSING_MODES",
    "TvltFeatureExtractor",
    "fit_audio_settings",
]
