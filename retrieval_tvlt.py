# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""Audio-video matching and retrieval with a TVLT pre-training checkpoint.

Hub code file (one of `remote_code_tvlt.CODE_FILES`; relative imports only). TVLT's pre-training has a vision-audio
matching head: for a (video, audio) pair it gives one logit, whose sigmoid is the probability that the audio belongs to
the video. TVLT is a joint encoder (a cross-encoder, not two towers), so every pair is one forward pass;
[`TvltAudioVisualMatcher`] preprocesses each video and each audio once and runs the pairs in batches.

```python
>>> from tvlt.retrieval_tvlt import TvltAudioVisualMatcher  # or: get_class_from_dynamic_module (see below)

>>> matcher = TvltAudioVisualMatcher.from_pretrained("path/to/tvlt-base")  # a converted ZinengTang/tvlt-base
>>> matcher.score("clip.mp4")  # the video with its own audio track: probability in [0, 1]
>>> matcher.score({"video": "face.mp4", "audio": "speech.wav"})
>>> matcher.rank_videos("speech.wav", ["a.mp4", "b.mp4", "c.mp4"], top_k=2)  # which video goes with this audio?
[{'index': 1, 'score': 0.93}, {'index': 0, 'score': 0.41}]
>>> matcher.rank_audios("face.mp4", ["x.wav", "y.wav"])  # which audio goes with this video?
>>> matcher.score_matrix(["a.mp4", "b.mp4"], ["x.wav", "y.wav", "z.wav"])  # (2, 3) tensor of probabilities
```

Without the `tvlt` package, from a TVLT repo folder or Hub id:

```python
>>> from transformers.dynamic_module_utils import get_class_from_dynamic_module

>>> TvltAudioVisualMatcher = get_class_from_dynamic_module("retrieval_tvlt.TvltAudioVisualMatcher", "path/to/repo")
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .inputs_tvlt import AudioVisualClip, TvltClipPreparer, TvltDataCollator, batch_on_model, check_window
from .modeling_tvlt import TvltForPreTraining
from .processing_tvlt import TvltProcessor


class TvltAudioVisualMatcher:
    """
    Scores how well audios match videos with the matching head of a [`TvltForPreTraining`] model.

    Videos are video file paths (their frames; the window `[start, end)` of them) or frames (`(T, H, W, 3)` arrays,
    lists of images). Audios are audio or video file paths (their sound; the same window) or waveforms with
    `sampling_rate`. Scores are sigmoid probabilities in [0, 1] that the audio belongs to the video.

    Args:
        model ([`TvltForPreTraining`]):
            A pre-training model with its matching head (`config.task_matching=True`). The matcher runs it without
            gradients and without the MAE pass; put it in eval mode (`from_pretrained` does).
        processor ([`TvltProcessor`]):
            The checkpoint's processor.
        batch_size (`int`, *optional*, defaults to 8):
            Pairs per forward pass.
    """

    def __init__(self, model, processor, batch_size: int = 8):
        if not getattr(model, "task_matching", False) or not hasattr(model, "matching_head"):
            raise ValueError(
                f"{type(model).__name__} has no vision-audio matching head; matching needs a TvltForPreTraining model "
                "with `task_matching=True` (e.g. a converted ZinengTang/tvlt-base)."
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.clip_preparer = TvltClipPreparer(processor, model.config)
        self.data_collator = TvltDataCollator(self.clip_preparer.audio_padding_value)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *, batch_size: int = 8, device=None, **kwargs
    ) -> TvltAudioVisualMatcher:
        """
        Load the model ([`TvltForPreTraining`]) and processor of a TVLT checkpoint (folder or Hub id), in eval mode.

        Args:
            device (`str` or `torch.device`, *optional*):
                Where to run the model (default: CPU).
            kwargs:
                Passed to both `from_pretrained` calls (`revision`, `cache_dir`, `local_files_only`, `dtype`, ...).
        """
        model = TvltForPreTraining.from_pretrained(pretrained_model_name_or_path, **kwargs).eval()
        if device is not None:
            model = model.to(device)
        processor = TvltProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)  # it ignores `dtype`
        return cls(model, processor, batch_size=batch_size)

    # -- scores -------------------------------------------------------------------------------------------------------

    def score(self, inputs, *, start: float | None = None, end: float | None = None) -> float | list[float]:
        """
        Match probability of clips given as the pipeline takes them: a video file path (with its own audio track) or
        `{"video": ..., "audio": ..., "sampling_rate": ...}`, or a list of those.

        Returns:
            `float` for one clip, `list[float]` for a list.
        """
        single = not isinstance(inputs, list)
        clips = [AudioVisualClip.from_input(item, start=start, end=end) for item in ([inputs] if single else inputs)]
        examples = [self.clip_preparer(clip) for clip in clips]
        scores = self._score_examples(examples).tolist()
        return scores[0] if single else scores

    def score_matrix(
        self,
        videos: Sequence,
        audios: Sequence,
        *,
        sampling_rate: int | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> torch.Tensor:
        """
        Match probability of every (video, audio) pair.

        Args:
            videos (list): video file paths or frame arrays.
            audios (list): audio/video file paths or waveforms (at `sampling_rate` Hz).
            sampling_rate (`int`, *optional*): rate of the waveforms among `audios`.
            start, end (`float`, *optional*): the time window (seconds) read from every file and waveform.

        Returns:
            `torch.FloatTensor` of shape `(len(videos), len(audios))`.
        """
        check_window(start, end, "start/end")
        video_inputs = [self.clip_preparer.video_inputs(video, start, end) for video in _as_list(videos, "videos")]
        audio_inputs = [
            self.clip_preparer.audio_inputs(audio, sampling_rate, start, end) for audio in _as_list(audios, "audios")
        ]
        pairs = [{**video, **audio} for video in video_inputs for audio in audio_inputs]
        return self._score_examples(pairs).view(len(video_inputs), len(audio_inputs))

    def rank_videos(self, audio, videos, *, top_k=None, sampling_rate=None, start=None, end=None) -> list[dict]:
        """
        Rank `videos` by how well `audio` matches each of them (`sampling_rate`, `start`, `end` as in `score_matrix`).

        Returns:
            `[{"index": i, "score": p}, ...]`, best first (`index` into `videos`), `top_k` of them (all by default).
        """
        return self._rank(videos, [audio], top_k, sampling_rate, start, end)

    def rank_audios(self, video, audios, *, top_k=None, sampling_rate=None, start=None, end=None) -> list[dict]:
        """Rank `audios` by how well each matches `video`: like `rank_videos`, `index` into `audios`."""
        return self._rank([video], audios, top_k, sampling_rate, start, end)

    def _rank(self, videos, audios, top_k, sampling_rate, start, end) -> list[dict]:
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"`top_k` must be a positive int or None (all), got {top_k!r}.")
        # one side holds a single item: the (videos, audios) matrix flattens to the scores of the other side
        scores = self.score_matrix(videos, audios, sampling_rate=sampling_rate, start=start, end=end).view(-1)
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        return [{"index": index, "score": scores[index].item()} for index in order[:top_k]]

    # -- forward ------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def _score_examples(self, examples: list[dict]) -> torch.Tensor:
        """Sigmoid match probabilities `(len(examples),)` of prepared (video + audio) examples, in batches."""
        scores = []
        for first in range(0, len(examples), self.batch_size):
            batch = batch_on_model(self.data_collator(examples[first : first + self.batch_size]), self.model)
            outputs = self.model(**batch, reconstruct=False)
            scores.append(outputs.matching_logits.float().sigmoid().view(-1).cpu())  # [B]
        return torch.cat(scores)


def _as_list(values, name: str) -> list:
    if isinstance(values, (str, os.PathLike)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"`{name}` must be a non-empty list, got {type(values).__name__}.")
    return list(values)


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .media_tvlt import DecodedVideo  # noqa: F401
    from .pipeline_tvlt import TvltAudioVisualClassificationPipeline  # noqa: F401
    from .processing_utils_tvlt import PREPROCESSING_MODES  # noqa: F401
    from .remote_code_tvlt import CODE_FILES  # noqa: F401


__all__ = ["TvltAudioVisualMatcher"]
