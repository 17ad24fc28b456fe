# Copyright 2026 the tvlt project authors.
# Licensed under the Apache License, Version 2.0.
"""The `audio-visual-classification` pipeline: a video and its audio in, labels with scores out.

Hub code file (one of `remote_code_tvlt.CODE_FILES`; relative imports only, never the `tvlt` package): `config.json`
names this class in `custom_pipelines`, so `pipeline("audio-visual-classification", model=<TVLT repo>,
trust_remote_code=True)` works without installing anything. With the `tvlt` package imported, the task is also
registered with `PIPELINE_REGISTRY` (for checkpoints whose config.json has no `custom_pipelines`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader
from transformers import Pipeline
from transformers.pipelines.base import no_collate_fn
from transformers.pipelines.pt_utils import (
    PipelineChunkIterator,
    PipelineDataset,
    PipelineIterator,
    PipelinePackIterator,
)
from transformers.utils import logging

from .inputs_tvlt import AudioVisualClip, TvltClipPreparer, TvltDataCollator, check_chunking, check_window
from .processing_tvlt import TvltProcessor
from .remote_code_tvlt import ARCHITECTURES, CLASSIFIER_ARCHITECTURE
from .remote_code_tvlt import PIPELINE_TASK as TASK


logger = logging.get_logger(__name__)

FUNCTIONS_TO_APPLY = ("softmax", "sigmoid", "none")
DEFAULT_TOP_K = 5

# Checkpoints whose weights hold no classifier: the pipeline would answer with a randomly initialised head.
_HEADLESS_ARCHITECTURES = set(ARCHITECTURES) - {CLASSIFIER_ARCHITECTURE}
_UNSET = object()
# What the windows of a chunked clip carry past the model, to regroup and date their results.
_WINDOW_KEYS = ("window_start", "window_end", "is_last")
_MATCHING_HINT = (
    "For a pre-training checkpoint, score how well the audio matches the video with "
    "retrieval_tvlt.TvltAudioVisualMatcher (or `tvlt predict`), or fine-tune a classifier first "
    "(examples/finetune.py)."
)


class TvltAudioVisualClassificationPipeline(Pipeline):
    """
    Audio-visual classification with a fine-tuned TVLT model (`TvltForAudioVisualClassification`), e.g. sentiment or
    emotion of a spoken video clip.

    ```python
    >>> from transformers import pipeline

    >>> classifier = pipeline("audio-visual-classification", model="path/to/tvlt-checkpoint", trust_remote_code=True)
    >>> classifier("clip.mp4")  # the frames and the file's own audio track
    [{'label': 'happy', 'score': 0.71}, {'label': 'surprise', 'score': 0.22}, ...]
    >>> classifier({"video": "face.mp4", "audio": "speech.wav"})  # a video without sound and a separate audio
    >>> classifier({"video": frames, "audio": waveform, "sampling_rate": 16000})  # (T, H, W, 3) frames, 1-D waveform
    >>> classifier(["a.mp4", "b.mp4"], batch_size=2)  # one result list per clip
    >>> classifier("interview.mp4", chunk_length_s="auto", stride_length_s=4, batch_size=8)  # a long video, windowed
    {'windows': [{'start': 0.0, 'end': 23.99, 'predictions': [...]}, ...], 'aggregate': [{'label': 'happy', ...}]}
    ```

    Inputs: a video file path (with an audio track), a dict `{"video": path_or_frames, "audio": path_or_waveform,
    "sampling_rate": int, "start": s, "end": s}` (`audio` and the rest optional for a video file with sound; frames
    are a `(T, H, W, 3)` array or a list of images; `sampling_rate` is required for waveforms), or a list of those.
    Only a time window of each file is read: `[start, end)`, by default from 0 for as long as the model takes audio
    (about 24 s for TVLT-base); the frames are sampled from the same window. See `inputs_tvlt.py`.

    Output, per clip, a list of `{"label": str, "score": float}`:

    - single-label heads (`problem_type="single_label_classification"`, or unset): softmax probabilities, best first;
    - multi-label heads (`"multi_label_classification"`): independent sigmoid probabilities, best first;
    - regression heads (`"regression"`): the raw predicted value of each output, in the head's order (`top_k` does not
      apply).

    With `chunk_length_s`, a clip is read as a series of windows (see below) and its output is a dict instead:
    `{"windows": [{"start": s, "end": s, "predictions": [...]}, ...], "aggregate": [...]}`. Each window's
    `predictions` are what the pipeline gives for that window alone (`start`/`end` set to it). `aggregate` is the
    clip-level result: the mean over the windows of each label's score (softmax or sigmoid probability for single- or
    multi-label heads, the predicted value for regression heads, the logit with `function_to_apply="none"`), ranked
    and cut to `top_k` like one window's predictions.

    Call parameters (also accepted by `pipeline(...)`):
        top_k (`int` or `None`, *optional*, defaults to 5):
            How many labels to return, best first; `None` returns all of them.
        function_to_apply (`str`, *optional*):
            `"softmax"`, `"sigmoid"` or `"none"` (raw logits); defaults to what `config.problem_type` implies.
        start (`float`, *optional*), end (`float`, *optional*):
            Default time window (seconds) for clips that do not give their own.
        chunk_length_s (`float` or `"auto"`, *optional*):
            Read each clip as windows of this many seconds, `"auto"` for as long as the audio the model takes (~24 s
            for TVLT-base; also the most allowed). `None` or 0 (default): one window per clip, the output above.
            Windows cover the clip's `[start, end)` (by default the whole files, up to where the shorter of video and
            audio ends); the frames of each window are sampled within it, and only each window is decoded, so memory
            does not grow with the length of the video. The tail is covered: the last window is moved back to end
            where the clip ends, so that every window has the same length. Needs the video as a file.
        stride_length_s (`float` or `(left, right)`, *optional*, defaults to 0):
            As in the speech-recognition pipeline, the seconds each window shares with its neighbour on the left and
            on the right: windows start every `chunk_length_s - left - right` seconds. Unlike there, nothing is cut
            off the windows (each window is classified whole), so the default is 0: windows side by side.

    Pre-training checkpoints (`TvltForPreTraining`, e.g. `ZinengTang/tvlt-base`) have no classifier: the pipeline
    refuses them. Score how well an audio matches a video with `retrieval_tvlt.TvltAudioVisualMatcher` instead (or
    `tvlt predict`), or fine-tune a classifier first (`examples/finetune.py`).
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _load_video_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _check_has_classifier(self.model)
        if self.processor is None and self.image_processor is not None and self.feature_extractor is not None:
            self.processor = TvltProcessor(
                image_processor=self.image_processor, feature_extractor=self.feature_extractor
            )
        if self.processor is None or not hasattr(self.processor, "feature_extractor"):
            raise ValueError(
                f"The {TASK} pipeline needs the TVLT processor: pass `processor=` (or `image_processor=` and "
                "`feature_extractor=`), or a model folder/repo with its processor_config.json or "
                "preprocessor_config.json."
            )
        self.clip_preparer = TvltClipPreparer(self.processor, self.model.config)
        self.data_collator = TvltDataCollator(self.clip_preparer.audio_padding_value)

    # -- parameters ---------------------------------------------------------------------------------------------------

    def _sanitize_parameters(
        self,
        top_k=_UNSET,
        function_to_apply=None,
        start=None,
        end=None,
        chunk_length_s=_UNSET,
        stride_length_s=_UNSET,
        **unknown,
    ):
        if unknown:
            raise TypeError(
                f"The {TASK} pipeline got unexpected parameter(s) {sorted(unknown)}; its parameters are top_k, "
                "function_to_apply, start, end, chunk_length_s, stride_length_s (and batch_size, num_workers)."
            )
        preprocess_params, postprocess_params = {}, {}
        if start is not None or end is not None:
            check_window(start, end, "start/end")
            preprocess_params.update(start=start, end=end)
        if chunk_length_s is not _UNSET or stride_length_s is not _UNSET:
            # what a call leaves out comes from pipeline(...) (at that point there is nothing yet); a stride only goes
            # with a chunk length, so a call's chunk_length_s=None also switches off the pipeline's stride
            defaults = getattr(self, "_preprocess_params", {})
            if chunk_length_s is _UNSET:
                chunk_length_s = defaults.get("chunk_length_s")
            if stride_length_s is _UNSET:
                stride_length_s = defaults.get("stride_length_s") if chunk_length_s else None
            chunk_length_s, _ = check_chunking(chunk_length_s, stride_length_s)
            preprocess_params.update(chunk_length_s=chunk_length_s, stride_length_s=stride_length_s)
        if top_k is not _UNSET:
            if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
                raise ValueError(f"`top_k` must be a positive int or None (all labels), got {top_k!r}.")
            postprocess_params["top_k"] = top_k
        if function_to_apply is not None:
            if function_to_apply not in FUNCTIONS_TO_APPLY:
                raise ValueError(
                    f"`function_to_apply` must be one of {FUNCTIONS_TO_APPLY}, got {function_to_apply!r}."
                )
            postprocess_params["function_to_apply"] = function_to_apply
        return preprocess_params, {}, postprocess_params

    def __call__(self, inputs, **kwargs):
        """
        Classify one clip or a list of clips (see the class docstring for the input forms).

        Returns:
            A list of `{"label", "score"}` dicts for one clip; a list of such lists for a list of clips. With
            `chunk_length_s`, a `{"windows": [...], "aggregate": [...]}` dict per clip instead.
        """
        chunk_length_s = kwargs.get("chunk_length_s", self._preprocess_params.get("chunk_length_s"))
        if chunk_length_s and isinstance(inputs, (str, os.PathLike, Mapping)):
            # one clip's windows go through the batching iterator, as a list of one clip (ChunkPipeline does the
            # same; without chunking a clip keeps the plain single-input path)
            return super().__call__([inputs], **kwargs)[0]
        return super().__call__(inputs, **kwargs)

    def save_pretrained(self, save_directory, **kwargs):
        """
        Save the model, the processor and the pipeline code, as a repo that `pipeline(..., trust_remote_code=True)`
        loads again.
        """
        # `Pipeline.save_pretrained` saves the image processor and the feature extractor one after the other into the
        # same preprocessor_config.json (the second overwrites the first) and not the processor; TVLT's processor
        # keeps both in processor_config.json.
        components = self.feature_extractor, self.image_processor
        self.feature_extractor = self.image_processor = None
        if not hasattr(self, "modelcard"):
            self.modelcard = None  # transformers 5.0's save_pretrained reads it but never sets it
        try:
            super().save_pretrained(save_directory, **kwargs)
        finally:
            self.feature_extractor, self.image_processor = components
        self.processor.save_pretrained(save_directory)

    # -- steps --------------------------------------------------------------------------------------------------------

    def preprocess(self, inputs, start=None, end=None, chunk_length_s=None, stride_length_s=None):
        """
        The model inputs of one clip; with `chunk_length_s`, an iterator over its windows' inputs instead, each with
        its `window_start`/`window_end` and `is_last` (the windows are planned at once, decoded one by one).
        """
        clip = AudioVisualClip.from_input(inputs, start=start, end=end, argument="inputs")
        if chunk_length_s is None:
            return self.clip_preparer(clip)
        windows = self.clip_preparer.chunk_windows(clip, chunk_length_s, stride_length_s)
        return self._window_inputs(clip, windows)

    def _window_inputs(self, clip: AudioVisualClip, windows: list[tuple[float, float]]):
        for index, (window_start, window_end) in enumerate(windows):
            inputs = self.clip_preparer(dataclasses.replace(clip, start=window_start, end=window_end))
            yield {
                **inputs,
                "window_start": window_start,
                "window_end": window_end,
                "is_last": index == len(windows) - 1,
            }

    def _forward(self, model_inputs):
        windows = {key: model_inputs.pop(key) for key in _WINDOW_KEYS if key in model_inputs}
        dtype = self.model.dtype
        model_inputs = {
            key: value.to(dtype) if value.is_floating_point() else value for key, value in model_inputs.items()
        }
        return {"logits": self.model(**model_inputs).logits, **windows}

    def postprocess(self, model_outputs, top_k=DEFAULT_TOP_K, function_to_apply=None):
        if isinstance(model_outputs, dict):
            return self._predictions(self._scores(model_outputs["logits"][0], function_to_apply), top_k)
        # the windows of a chunked clip
        scores = [self._scores(output["logits"][0], function_to_apply) for output in model_outputs]
        windows = [
            {
                "start": output["window_start"],
                "end": output["window_end"],
                "predictions": self._predictions(score, top_k),
            }
            for output, score in zip(model_outputs, scores)
        ]
        return {"windows": windows, "aggregate": self._predictions(torch.stack(scores).mean(0), top_k)}

    def _scores(self, logits: torch.Tensor, function_to_apply: str | None) -> torch.Tensor:
        return scores_from_logits(logits, self.model.config.head_problem_type, function_to_apply)  # [num_labels]

    def _predictions(self, scores: torch.Tensor, top_k: int | None) -> list[dict]:
        id2label = self.model.config.id2label
        results = [{"label": id2label.get(i, f"LABEL_{i}"), "score": score} for i, score in enumerate(scores.tolist())]
        if self.model.config.head_problem_type == "regression":
            return results  # one value per output, in the head's order
        results.sort(key=lambda result: result["score"], reverse=True)
        return results if top_k is None else results[:top_k]

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        """
        Like `Pipeline.get_iterator` (one window per clip) or `ChunkPipeline.get_iterator` (with `chunk_length_s`),
        but batching with the TVLT collator (frames and spectrograms need padding). The windows of a clip, and of the
        clips after it, fill the batches in order.
        """
        if preprocess_params.get("chunk_length_s") is None:
            if batch_size == 1:
                return super().get_iterator(
                    inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
                )
            dataset = PipelineDataset(inputs, self.preprocess, preprocess_params)
            dataloader = DataLoader(
                dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=self.data_collator
            )
            model_iterator = PipelineIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
            return PipelineIterator(model_iterator, self.postprocess, postprocess_params)
        if num_workers > 1:
            # an iterable dataset: each worker would read every window
            logger.warning(f"The {TASK} pipeline reads the windows of chunked clips in one worker (num_workers=1).")
            num_workers = 1
        collate_fn = no_collate_fn if batch_size == 1 else self._collate_windows
        dataset = PipelineChunkIterator(inputs, self.preprocess, preprocess_params)
        dataloader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, collate_fn=collate_fn)
        model_iterator = PipelinePackIterator(dataloader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def _collate_windows(self, items: list[dict]) -> dict:
        windows = {key: [item[key] for item in items] for key in _WINDOW_KEYS}
        batch = self.data_collator([{k: v for k, v in item.items() if k not in _WINDOW_KEYS} for item in items])
        return {**batch, **windows}


def scores_from_logits(logits, problem_type: str, function_to_apply: str | None = None):
    """Label scores (float32) of `logits` `(..., num_labels)`: softmax probabilities for single-label heads, sigmoid
    probabilities for multi-label heads, the raw values for regression, unless `function_to_apply` says otherwise."""
    if function_to_apply is None:
        function_to_apply = {"regression": "none", "multi_label_classification": "sigmoid"}.get(
            problem_type, "softmax"
        )
    logits = logits.float()
    if function_to_apply == "softmax":
        return logits.softmax(-1)
    if function_to_apply == "sigmoid":
        return logits.sigmoid()
    return logits


def _check_has_classifier(model) -> None:
    if getattr(model, "classifier", None) is None:
        raise ValueError(
            f"{type(model).__name__} has no classifier; the {TASK} pipeline needs TvltForAudioVisualClassification. "
            f"{_MATCHING_HINT}"
        )
    # A pre-training checkpoint loaded for classification gets a random head. Its config still names the pre-training
    # architecture and carries no labels; a model fine-tuned in memory from it has its labels set.
    architectures = set(getattr(model.config, "architectures", None) or [])
    default_labels = all(label == f"LABEL_{i}" for i, label in model.config.id2label.items())
    if architectures and architectures <= _HEADLESS_ARCHITECTURES and default_labels:
        raise ValueError(
            f"This TVLT checkpoint ({', '.join(sorted(architectures))}) has no trained classifier, so {TASK} would "
            f"answer with a random head. {_MATCHING_HINT} (A model fine-tuned in memory from it: give it labels, "
            "`id2label`, or save it first.)"
        )


# Remote-code fetch list, written by scripts/fetch_lists.py (see remote_code_tvlt.py): do not edit.
if TYPE_CHECKING:
    from .configuration_tvlt import TvltConfig  # noqa: F401
    from .embedding_tvlt import TvltAudioVisualEmbedder  # noqa: F401
    from .feature_extraction_tvlt import TvltFeatureExtractor  # noqa: F401
    from .image_processing_tvlt import TvltImageProcessor  # noqa: F401
    from .media_tvlt import DecodedVideo  # noqa: F401
    from .modeling_tvlt import TvltPreTrainedModel  # noqa: F401
    from .processing_utils_tvlt import PREPROCESSING_MODES  # noqa: F401
    from .retrieval_tvlt import TvltAudioVisualMatcher  # noqa: F401


__all__ = ["TvltAudioVisualClassificationPipeline", "scores_from_logits"]
