"""Audio-video matching and retrieval (`retrieval_tvlt.TvltAudioVisualMatcher`) on a tiny pre-training checkpoint."""

import numpy as np
import pytest
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tone, write_clip

from tvlt import TvltForPreTraining, TvltProcessor
from tvlt.inputs_tvlt import AudioVisualClip, TvltClipPreparer
from tvlt.media_tvlt import load_audio
from tvlt.retrieval_tvlt import TvltAudioVisualMatcher


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("retrieval") / "pretraining", "pretraining", seed=3)


@pytest.fixture(scope="module")
def matcher(repo):
    return TvltAudioVisualMatcher.from_pretrained(repo, batch_size=2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    # different lengths, so that batches of pairs are padded along frames and time
    return [
        str(
            write_clip(
                folder / f"clip{i}.mp4", moving_square_frames(frames, seed=i), waveform=tone(freq, frames / 8, seed=i)
            )
        )
        for i, (frames, freq) in enumerate([(8, 300.0), (3, 900.0), (6, 2000.0)])
    ]


def reference_score(repo, video: str, audio: str) -> float:
    """One pair through the processor and the model, without the matcher."""
    model = TvltForPreTraining.from_pretrained(repo).eval()
    preparer = TvltClipPreparer(TvltProcessor.from_pretrained(repo), model.config)
    inputs = preparer(AudioVisualClip(video=video, audio=audio))
    with torch.no_grad():
        return model(**inputs, reconstruct=False).matching_logits.sigmoid().item()


def test_the_score_matrix_holds_the_matching_probability_of_every_pair(matcher, repo, clips):
    matrix = matcher.score_matrix(clips, clips[:2])
    assert matrix.shape == (3, 2)
    assert ((matrix > 0) & (matrix < 1)).all()
    for v, video in enumerate(clips):
        for a, audio in enumerate(clips[:2]):
            assert matrix[v, a].item() == pytest.approx(reference_score(repo, video, audio), abs=1e-5)


def test_scores_do_not_depend_on_the_batch_size(repo, clips, matcher):
    one_at_a_time = TvltAudioVisualMatcher(matcher.model, matcher.processor, batch_size=1).score_matrix(clips, clips)
    all_at_once = TvltAudioVisualMatcher(matcher.model, matcher.processor, batch_size=9).score_matrix(clips, clips)
    torch.testing.assert_close(one_at_a_time, all_at_once, atol=1e-5, rtol=0)
    torch.testing.assert_close(matcher.score_matrix(clips, clips), all_at_once, atol=1e-5, rtol=0)


def test_rankings_follow_the_score_matrix(matcher, clips):
    matrix = matcher.score_matrix(clips, clips)
    ranked_videos = matcher.rank_videos(clips[1], clips)
    assert [item["index"] for item in ranked_videos] == torch.argsort(matrix[:, 1], descending=True).tolist()
    assert [item["score"] for item in ranked_videos] == pytest.approx(sorted(matrix[:, 1].tolist(), reverse=True))
    ranked_audios = matcher.rank_audios(clips[2], clips, top_k=2)
    assert len(ranked_audios) == 2
    assert [item["index"] for item in ranked_audios] == torch.argsort(matrix[2], descending=True)[:2].tolist()


def test_a_clip_with_its_own_track_scores_like_the_pair_of_its_files(matcher, clips):
    assert matcher.score(clips[0]) == pytest.approx(
        matcher.score_matrix([clips[0]], [clips[0]])[0, 0].item(), abs=1e-6
    )
    assert matcher.score(clips) == pytest.approx(matcher.score_matrix(clips, clips).diagonal().tolist(), abs=1e-6)
    cross = matcher.score({"video": clips[0], "audio": clips[1]})
    assert cross == pytest.approx(matcher.score_matrix([clips[0]], [clips[1]])[0, 0].item(), abs=1e-6)


def test_waveforms_and_files_are_interchangeable(matcher, clips):
    window = matcher.clip_preparer.max_audio_seconds
    waveform, rate = load_audio(clips[0], end=window)
    from_file = matcher.score_matrix(clips, [clips[0]])
    from_waveform = matcher.score_matrix(clips, [waveform], sampling_rate=rate)
    torch.testing.assert_close(from_waveform, from_file, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, c: m.score_matrix([], c), "`videos` must be a non-empty list"),
        (lambda m, c: m.score_matrix(c[0], c), "`videos` must be a non-empty list"),
        (lambda m, c: m.rank_videos(c[0], c, top_k=0), "`top_k` must be a positive int"),
        # checked before any clip is read: this empty list would fail later
        (lambda m, c: m.rank_audios(c[0], [], top_k=True), "`top_k` must be a positive int"),
        (lambda m, c: m.score_matrix(c, [np.zeros(4410, np.float32)]), "sampling_rate"),
        (lambda m, c: m.score_matrix(c, c, start=1.0, end=0.5), "must be after `start`"),
    ],
)
def test_bad_arguments_raise_a_clear_error(matcher, clips, call, message):
    with pytest.raises(ValueError, match=message):
        call(matcher, clips)


def test_a_model_without_the_matching_head_is_refused(tmp_path, matcher):
    from tvlt import TvltForAudioVisualClassification

    classifier = save_tiny_checkpoint(tmp_path / "classifier", "classification")
    with pytest.raises(ValueError, match="has no vision-audio matching head"):
        TvltAudioVisualMatcher(TvltForAudioVisualClassification.from_pretrained(classifier), matcher.processor)
    mae_only = save_tiny_checkpoint(tmp_path / "mae_only", "pretraining", task_matching=False)
    with pytest.raises(ValueError, match="task_matching=True"):
        TvltAudioVisualMatcher.from_pretrained(mae_only)
