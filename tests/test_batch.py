"""Batch jobs: `tvlt embed` and batch `tvlt predict` over folders, globs and manifests, Parquet and JSON Lines output,
failure rows, resuming (and refusing to resume into another job's output), interruption, locking, malformed
manifests, and the same job on 2 processes (torchrun, gloo, CPU). Tiny random checkpoints, generated clips."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset
import pyarrow.parquet as pq
import pytest
import torch
from _av_toys import moving_square_frames, save_tiny_checkpoint, tone, write_clip
from conftest import launcher_env

from tvlt import TvltAudioVisualEmbedder
from tvlt.cli import main
from tvlt.commands import _batch_job
from tvlt.commands._batch import JOB_FILE
from tvlt.commands._batch_output import OutputFolder


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    return {kind: save_tiny_checkpoint(root / kind, kind) for kind in ("classification", "regression", "pretraining")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Five good clips of different lengths (so that batches pad), a silent one and a corrupt one."""
    folder = tmp_path_factory.mktemp("clips")
    for index in range(5):
        seconds = 0.5 + 0.25 * index
        frames = moving_square_frames(max(2, int(8 * seconds)), seed=index)
        write_clip(folder / f"clip{index}.mp4", frames, waveform=tone(300.0 + 150 * index, seconds, seed=index))
    write_clip(folder / "silent.mp4", moving_square_frames(8, seed=7))
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (folder / "notes.txt").write_text("not a video: a folder listing skips it")
    return folder


def run_cli(*arguments) -> int:
    return main([str(argument) for argument in arguments])


def read_rows(out: Path) -> list[dict]:
    """Every row of an output folder (Parquet or JSONL), sorted by id."""
    if out.suffix == ".parquet":
        rows = pyarrow.dataset.dataset(out).to_table().to_pylist()
    else:
        rows = [
            json.loads(line) for part in sorted(out.glob("part-*.jsonl")) for line in part.read_text().splitlines()
        ]
    return sorted(rows, key=lambda row: row["id"])


def part_files(out: Path) -> list[Path]:
    return sorted(out.glob("part-*"))


# -- embed ------------------------------------------------------------------------------------------------------------


def test_embed_a_folder_gives_one_row_per_clip_with_errors_for_the_bad_ones(repos, clips, tmp_path, capsys):
    out = tmp_path / "emb.parquet"
    status = run_cli(
        "embed", clips, "--model", repos["pretraining"], "--out", out, "--num-workers", 0, "--batch-size", 3
    )
    assert status == 1  # the job finished; some clips failed
    rows = read_rows(out)
    names = [Path(row["video"]).name for row in rows]
    assert names == ["clip0.mp4", "clip1.mp4", "clip2.mp4", "clip3.mp4", "clip4.mp4", "corrupt.mp4", "silent.mp4"]
    errors = {Path(row["video"]).name: row["error"] for row in rows}
    assert errors["corrupt.mp4"].startswith("MediaDecodingError: ") and "corrupt.mp4" in errors["corrupt.mp4"]
    assert errors["silent.mp4"].startswith("MissingAudioError: ") and "no audio track" in errors["silent.mp4"]
    # on the command line the hint names the manifest's column, not Python syntax
    assert errors["silent.mp4"].endswith("give its audio in a manifest's `audio` column.")
    assert "{" not in errors["silent.mp4"]
    assert all(errors[f"clip{i}.mp4"] is None for i in range(5))
    assert rows[5]["embedding"] is None and len(rows[0]["embedding"]) == 32

    schema = pq.read_schema(part_files(out)[0])
    assert str(schema.field("embedding").type) == "fixed_size_list<element: float>[32]"
    assert json.loads(schema.metadata[b"tvlt_job"]) == json.loads((out / JOB_FILE).read_text())

    # the vectors are the embedder's, whatever the batch they were in
    embedder = TvltAudioVisualEmbedder.from_pretrained(repos["pretraining"])
    expected = embedder([row["video"] for row in rows[:5]])
    assert (torch.tensor([row["embedding"] for row in rows[:5]]) - expected).abs().max().item() <= 1e-5

    err = capsys.readouterr().err
    assert "7 clips in" in err and "2 failed" in err and "corrupt.mp4" in err


def test_jsonl_and_parquet_hold_the_same_rows_and_workers_change_nothing(repos, clips, tmp_path):
    common = ["--model", repos["pretraining"], "--pooling", "mean", "--modality", "video", "--batch-size", 2]
    run_cli("embed", clips, *common, "--out", tmp_path / "a.parquet", "--num-workers", 0)
    run_cli("embed", clips, *common, "--out", tmp_path / "b.jsonl", "--num-workers", 2)
    parquet, jsonl = read_rows(tmp_path / "a.parquet"), read_rows(tmp_path / "b.jsonl")
    assert [{k: v for k, v in row.items() if k != "embedding"} for row in parquet] == [
        {k: v for k, v in row.items() if k != "embedding"} for row in jsonl
    ]
    for a, b in zip(parquet, jsonl, strict=True):
        assert (a["embedding"] is None) == (b["embedding"] is None)
        if a["embedding"] is not None:
            assert np.abs(np.array(a["embedding"]) - np.array(b["embedding"])).max() <= 1e-5
    silent = next(row for row in parquet if row["video"].endswith("silent.mp4"))
    assert silent["error"] is None  # a video embedding needs no sound


def test_long_jobs_replace_their_worker_processes_and_lose_no_clip(repos, clips, tmp_path, monkeypatch):
    """Workers decode at most CLIPS_PER_WORKER clips each (their memory creeps up over hundreds of clips)."""
    loaders = []
    original = _batch_job.DataLoader

    def counting(*args, **kwargs):
        loaders.append(len(args[0]))
        return original(*args, **kwargs)

    common = ["--model", repos["pretraining"], "--batch-size", 2, "--num-workers", 1]
    run_cli("embed", clips, *common, "--out", tmp_path / "once.parquet")
    monkeypatch.setattr(_batch_job, "CLIPS_PER_WORKER", 1)
    monkeypatch.setattr(_batch_job, "DataLoader", counting)
    run_cli("embed", clips, *common, "--out", tmp_path / "recycled.parquet")
    assert loaders == [2, 2, 2, 1]  # 7 clips, 2 per loader (one batch)
    once, recycled = read_rows(tmp_path / "once.parquet"), read_rows(tmp_path / "recycled.parquet")
    assert [row["id"] for row in recycled] == [row["id"] for row in once]
    assert [row["embedding"] is None for row in recycled] == [row["embedding"] is None for row in once]


def test_a_manifest_gives_windows_separate_audio_ids_and_records_missing_files(repos, clips, tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        "video,audio,start,end,id\n"
        f"{clips / 'clip4.mp4'},,0.25,1.0,windowed\n"
        f"{clips / 'silent.mp4'},{clips / 'clip1.mp4'},,,dubbed\n"
        "missing.mp4,,,,gone\n"
    )
    out = tmp_path / "emb.jsonl"
    assert run_cli("embed", manifest, "--model", repos["pretraining"], "--out", out, "--num-workers", 0) == 1
    rows = {row["id"]: row for row in read_rows(out)}
    assert (rows["windowed"]["start"], rows["windowed"]["end"]) == (0.25, 1.0)
    assert rows["dubbed"]["error"] is None and rows["dubbed"]["audio"] == str(clips / "clip1.mp4")
    # relative paths are relative to the manifest's folder
    assert rows["gone"]["error"] == f"FileNotFoundError: {tmp_path / 'missing.mp4'}: no such video file."
    embedder = TvltAudioVisualEmbedder.from_pretrained(repos["pretraining"])
    expected = embedder({"video": str(clips / "clip4.mp4"), "start": 0.25, "end": 1.0})
    assert np.abs(np.array(rows["windowed"]["embedding"]) - expected.numpy()).max() <= 1e-5


def test_default_ids_are_the_path_with_its_window_as_a_media_fragment(repos, clips, tmp_path):
    out = tmp_path / "emb.jsonl"
    run_cli("embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out, "--start", "0.5")
    run_cli("embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out)
    assert [row["id"] for row in read_rows(out)] == [str(clips / "clip0.mp4"), f"{clips / 'clip0.mp4'}#t=0.5"]


# -- resume -----------------------------------------------------------------------------------------------------------


def test_rerunning_resumes_skipping_what_is_written_and_appends_new_parts(repos, clips, tmp_path, capsys):
    out = tmp_path / "emb.parquet"
    first = ["embed", clips / "clip0.mp4", clips / "clip1.mp4", clips / "corrupt.mp4"]
    options = ["--model", repos["pretraining"], "--out", out, "--num-workers", 0, "--rows-per-part", 2]
    assert run_cli(*first, *options) == 1
    before = {path.name: path.read_bytes() for path in part_files(out)}
    assert len(before) == 2  # 3 rows, 2 per part

    assert run_cli("embed", clips, *options) == 1  # the whole folder now: 4 more clips
    after = part_files(out)
    assert {path.name: path.read_bytes() for path in after if path.name in before} == before  # untouched
    rows = read_rows(out)
    assert len(rows) == 7 and len({row["id"] for row in rows}) == 7
    assert "3 already there" in capsys.readouterr().err

    assert run_cli("embed", clips, *options) == 1  # nothing left: nothing written, failures still reported
    assert part_files(out) == after
    assert "0 written now, 7 already there; 2 failed" in capsys.readouterr().err


def test_an_interrupted_job_keeps_its_finished_rows_and_resumes(repos, clips, tmp_path, monkeypatch):
    out = tmp_path / "emb.parquet"
    options = ["--model", repos["pretraining"], "--out", out, "--num-workers", 0, "--batch-size", 2]
    calls = []
    original = _batch_job.EmbedTask.run

    def interrupt_on_the_third_batch(self, model, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(_batch_job.EmbedTask, "run", interrupt_on_the_third_batch)
    assert run_cli("embed", clips, *options) == 130
    assert len(read_rows(out)) == 4  # the first two batches, flushed when interrupted
    (out / ".part-r00000-20200101T000000-1-00000.parquet.tmp").write_bytes(b"half a part of a killed job")
    monkeypatch.setattr(_batch_job.EmbedTask, "run", original)
    assert run_cli("embed", clips, *options) == 1
    rows = read_rows(out)
    assert len(rows) == 7 and len({row["id"] for row in rows}) == 7
    assert not list(out.glob(".part-*.tmp"))  # the killed job's temporary part is gone


@pytest.mark.parametrize(
    "change, reason",
    [
        (["--pooling", "mean"], "its --pooling is 'cls', this job's is 'mean'"),
        (["--dtype", "bfloat16"], "its --dtype is 'float32', this job's is 'bfloat16'"),
        (["--modality", "audio"], "its --modality is 'audio-visual', this job's is 'audio'"),
        (["--model", "OTHER"], "another model or checkpoint revision"),
    ],
)
def test_resuming_into_another_jobs_output_is_refused(repos, clips, tmp_path, capsys, change, reason):
    out = tmp_path / "emb.parquet"
    base = ["embed", clips / "clip0.mp4", "--out", out, "--num-workers", 0]
    assert run_cli(*base, "--model", repos["pretraining"]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    change = [repos["classification"] if item == "OTHER" else item for item in change]
    model = [] if "--model" in change else ["--model", repos["pretraining"]]
    capsys.readouterr()
    assert run_cli(*base, *model, *change) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to resume into it" in err[0] and reason in err[0], err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    # --force starts over, deleting only the earlier job's files
    (out / "_notes.txt").write_text("the user's own notes")  # readers skip "_" names
    assert run_cli(*base, *model, *change, "--force") == 0
    assert len(read_rows(out)) == 1 and (out / "_notes.txt").exists()
    assert (out / JOB_FILE).read_bytes() != before[JOB_FILE]  # the new job's identity


def test_an_output_without_results_does_not_hold_its_identity(repos, clips, tmp_path):
    """A job that stopped before writing any part (e.g. while loading its model) protects nothing."""
    out = tmp_path / "emb.parquet"
    assert run_cli("embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out) == 0
    for part in part_files(out):
        part.unlink()
    assert run_cli("embed", clips / "clip0.mp4", "--model", repos["classification"], "--out", out) == 0
    assert json.loads((out / JOB_FILE).read_text())["model"] == str(repos["classification"])


def test_a_failing_disk_stops_the_job_with_whole_parts_only(repos, clips, tmp_path, monkeypatch, capsys):
    from tvlt.commands import _batch_output

    out = tmp_path / "emb.jsonl"
    written = []
    original = _batch_output._write_atomically

    def full_after_one_part(path, data, temporary=None):
        if not os.path.basename(path).startswith("part-"):
            return original(path, data, temporary)
        if written:
            with open(temporary, "wb") as handle:
                handle.write(data[:10])  # what a full disk leaves behind
            raise OSError(28, "No space left on device")
        written.append(path)
        return original(path, data, temporary)

    monkeypatch.setattr(_batch_output, "_write_atomically", full_after_one_part)
    options = ["--model", repos["pretraining"], "--out", out, "--num-workers", 0, "--rows-per-part", 2]
    assert run_cli("embed", clips, *options) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert len(read_rows(out)) == 2  # the first part, whole
    monkeypatch.setattr(_batch_output, "_write_atomically", original)
    assert run_cli("embed", clips, *options) == 1
    assert len(read_rows(out)) == 7 and not list(out.glob(".part-*"))


def test_predict_output_cannot_be_resumed_by_embed(repos, clips, tmp_path, capsys):
    out = tmp_path / "res.jsonl"
    assert run_cli("predict", clips / "clip0.mp4", "--model", repos["classification"], "--out", out) == 0
    assert run_cli("embed", clips / "clip0.mp4", "--model", repos["classification"], "--out", out) == 2
    assert "it holds the results of `tvlt predict`, this is `tvlt embed`" in capsys.readouterr().err


def test_a_second_job_on_the_same_output_is_refused_while_the_first_runs(repos, clips, tmp_path, capsys):
    out = tmp_path / "emb.parquet"
    running = OutputFolder(str(out), "parquet", rank=0)
    running.lock()
    try:
        assert run_cli("embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out) == 2
    finally:
        running.release()
    assert "another tvlt job is writing there" in capsys.readouterr().err
    assert not part_files(out)


# -- predict ----------------------------------------------------------------------------------------------------------


def test_batch_predict_rows_hold_the_pipelines_scores(repos, clips, tmp_path):
    from transformers import pipeline

    from tvlt import TvltAudioVisualClassificationPipeline

    out = tmp_path / "pred.parquet"
    assert run_cli("predict", f"{clips}/clip*.mp4", "--model", repos["classification"], "--out", out) == 0
    rows = read_rows(out)
    assert len(rows) == 5
    classifier = pipeline(
        "audio-visual-classification",
        model=str(repos["classification"]),
        pipeline_class=TvltAudioVisualClassificationPipeline,
    )
    for row in rows:
        expected = classifier(row["video"], top_k=None)
        assert row["label"] == expected[0]["label"] and row["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
        assert row["scores"] == {item["label"]: pytest.approx(item["score"], abs=1e-5) for item in expected}


def test_batch_predict_regression_and_matching(repos, clips, tmp_path):
    from tvlt.retrieval_tvlt import TvltAudioVisualMatcher

    out = tmp_path / "reg.jsonl"
    assert run_cli("predict", clips / "clip0.mp4", "--model", repos["regression"], "--out", out) == 0
    (row,) = read_rows(out)
    assert row["label"] is None and row["score"] is None and set(row["scores"]) == {"sentiment"}

    out = tmp_path / "match.parquet"
    assert run_cli("predict", clips, "--model", repos["pretraining"], "--out", out, "--num-workers", 0) == 1
    rows = [row for row in read_rows(out) if row["error"] is None]
    matcher = TvltAudioVisualMatcher.from_pretrained(repos["pretraining"])
    expected = matcher.score([row["video"] for row in rows])
    assert [row["match_score"] for row in rows] == pytest.approx(expected, abs=1e-5)


# -- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "manifest, text, message",
    [
        ("m.csv", "path,audio\na.mp4,\n", r"m.csv line 1: no `video` column"),
        ("m.csv", "video,label\na.mp4,happy\n", r"m.csv line 2: unknown column\(s\) 'label'"),
        ("m.csv", "video,start,end\na.mp4,1,2\nb.mp4,3,2\n", r"m.csv line 3: `end` \(2\) must be after `start` \(3\)"),
        ("m.csv", "video,start\na.mp4,soon\n", r"m.csv line 2: `start` must be a number of seconds from 0 to"),
        ("m.csv", "video,end\na.mp4,inf\n", r"m.csv line 2: `end` must be a number of seconds from 0 to"),
        ("m.csv", "video,start\na.mp4,-1\n", r"m.csv line 2: `start` must be a number of seconds from 0 to"),
        # beyond the bound every window obeys (media_tvlt.MAX_WINDOW_SECONDS): up front, not a row error per clip
        ("m.csv", "video,end\na.mp4,1e9\n", r"line 2: `end` must be a number of seconds from 0 to 10,000,000 \(116"),
        ("m.jsonl", '{"video": "a.mp4", "start": 2e7}\n', r"m.jsonl line 1: `start` must be a number of seconds from"),
        # a manifest that lists itself (or another manifest): manifests do not nest
        ("m.csv", "video\nm.csv\n", r"m.csv line 2: `video` m.csv is a manifest, not a media file; manifests do not"),
        (
            "m.jsonl",
            '{"video": "a.mp4", "audio": "more.CSV"}\n',
            r"line 1: `audio` more.CSV is a manifest, not a media",
        ),
        ("m.csv", "video,audio\na.mp4,x.wav,extra\n", r"m.csv line 2: more fields than the header"),
        (
            "m.csv",
            "video,start\na.mp4,1\na.mp4,1\n",
            r"m.csv line 3: id 'a.mp4#t=1' repeats line 2; ids must be unique",
        ),
        ("m.csv", "video\n", r"m.csv: the manifest has no rows"),
        ("m.csv", "", r"m.csv: the manifest is empty"),
        ("m.jsonl", '{"video": "a.mp4"}\n{"video": "b.mp4", "start": 2, "end": 1}\n', r"m.jsonl line 2: `end`"),
        ("m.jsonl", '{"video": "a.mp4"}\n[1, 2]\n', r"m.jsonl line 2: expected a JSON object"),
        ("m.jsonl", '{"video": "a.mp4"\n', r"m.jsonl line 1: not valid JSON"),
        ("m.jsonl", '{"audio": "a.wav"}\n', r"m.jsonl line 1: no `video`"),
        ("m.jsonl", '{"video": "a.mp4", "strat": 1}\n', r"m.jsonl line 1: unknown column\(s\) 'strat'"),
        ("m.csv", b"video\na.mp4\n\xff.mp4\n", r"m.csv line 3: not UTF-8 text"),
        ("m.jsonl", b'{"video": "a.mp4"}\r\n\xff\n', r"m.jsonl line 2: not UTF-8 text"),
    ],
)
def test_a_malformed_manifest_is_one_line_naming_the_row_exit_2_and_nothing_written(
    repos, tmp_path, capsys, manifest, text, message
):
    (tmp_path / manifest).write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out.parquet"
    for command in ("embed", "predict"):
        assert run_cli(command, tmp_path / manifest, "--model", repos["classification"], "--out", out) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"tvlt {command}: error: "), captured.err
        assert re.search(message, lines[0]), lines[0]
        assert not out.exists()


@pytest.mark.parametrize(
    "options, workers", [(["--num-workers", "64"], [2]), (["--num-workers", "64", "--batch-size", "100000000"], [1])]
)
def test_no_more_decoding_workers_start_than_there_are_batches(repos, clips, tmp_path, monkeypatch, options, workers):
    started = []
    real_loader = _batch_job.DataLoader

    def loader(dataset, **kwargs):
        started.append(kwargs["num_workers"])
        return real_loader(dataset, **kwargs)

    monkeypatch.setattr(_batch_job, "DataLoader", loader)
    inputs = [clips / "clip0.mp4", clips / "clip1.mp4"]  # 2 clips: 2 batches of 1, or 1 batch
    out = tmp_path / "e.jsonl"
    assert run_cli("embed", *inputs, "--model", repos["pretraining"], "--out", out, "--batch-size", "1", *options) == 0
    assert started == workers and len(read_rows(out)) == 2


def test_a_job_never_reads_its_own_output_folder(repos, clips, tmp_path, capsys):
    """--out inside an input folder: a glob that matches everything would list the job's parts and identity file on a
    resume; they are skipped, and a file named inside --out is refused."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clips / "clip0.mp4", folder / "a.mp4")
    out = folder / "e.parquet"
    job = ["embed", f"{folder}/**", "--model", repos["pretraining"], "--out", out, "--num-workers", 0]
    for _ in range(2):  # the first run, and the resume that sees the parts
        assert run_cli(*job) == 0
        assert [(row["id"], row["error"]) for row in read_rows(out)] == [(f"{folder}/a.mp4", None)]
    capsys.readouterr()
    (part,) = part_files(out)
    assert run_cli("embed", part, "--model", repos["pretraining"], "--out", out) == 2
    assert "is inside --out" in capsys.readouterr().err
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video\n{part}\n")
    assert run_cli("embed", manifest, "--model", repos["pretraining"], "--out", out) == 2
    assert "m.csv line 2: `video` " in capsys.readouterr().err
    # however it is reached: a link to a part, a folder linked into --out, a path through `..`
    (tmp_path / "link.parquet").symlink_to(part)
    (tmp_path / "out-link").symlink_to(out, target_is_directory=True)
    for name in ("link.parquet", f"out-link/{part.name}", f"in/../in/e.parquet/{part.name}"):
        manifest.write_text(f"video\n{name}\n")
        assert run_cli("embed", manifest, "--model", repos["pretraining"], "--out", out) == 2
        assert "m.csv line 2: `video` " in capsys.readouterr().err, name


def test_a_file_reached_twice_is_one_clip_even_round_a_symlink_loop(repos, clips, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(clips / "clip0.mp4", folder / "a.mp4")
    (folder / "sub" / "up").symlink_to("..")  # in/sub/up/sub/up/... until the system refuses
    (folder / "b.mp4").symlink_to(folder / "a.mp4")
    out = tmp_path / "e.jsonl"
    inputs = [f"{folder}/**/*.mp4", folder, f"{folder}/./a.mp4"]
    assert run_cli("embed", *inputs, "--model", repos["pretraining"], "--out", out, "--num-workers", 0) == 0
    assert [row["id"] for row in read_rows(out)] == [f"{folder}/a.mp4"]


def test_manifests_from_spreadsheets_and_editors_are_read_as_written(repos, clips, tmp_path):
    """A UTF-8 BOM (Excel's "CSV UTF-8"), CRLF line ends, quoted commas, spaces and non-ASCII letters in paths."""
    folder = tmp_path / "clips, täglich"
    folder.mkdir()
    shutil.copy(clips / "clip0.mp4", folder / "a b,é.mp4")
    manifest = tmp_path / "m.csv"
    manifest.write_bytes('\ufeffvideo,id\r\n"clips, täglich/a b,é.mp4",one\r\n'.encode())
    assert run_cli("embed", manifest, "--model", repos["pretraining"], "--out", tmp_path / "e.jsonl") == 0
    (row,) = read_rows(tmp_path / "e.jsonl")
    assert (row["id"], row["video"], row["error"]) == ("one", "clips, täglich/a b,é.mp4", None)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (lambda c, t: [c, "--out", t / "emb.csv"], r"expected a path ending in .parquet or .jsonl"),
        (lambda c, t: [c, "--out", t / "file.parquet"], r"is a file; a batch job writes a folder"),
        (lambda c, t: [c, "--out", t / "foreign.parquet"], r"is a folder that no tvlt batch job made"),
        (lambda c, t: [c, "--out", t / "no" / "such" / "e.parquet"], r"does not exist"),
        (lambda c, t: [t / "nothing-*.mp4", "--out", t / "e.parquet"], r"the pattern matches no file"),
        (lambda c, t: [t / "typo", "--out", t / "e.parquet"], r"typo: no such file or folder"),
        (lambda c, t: [t / "empty", "--out", t / "e.parquet"], r"no video files in this folder"),
        (lambda c, t: [c], r"a batch job needs --out"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(repos, clips, tmp_path, capsys, arguments, message):
    (tmp_path / "file.parquet").write_text("not ours")
    (tmp_path / "foreign.parquet").mkdir()
    (tmp_path / "foreign.parquet" / "data.bin").write_text("the user's")
    (tmp_path / "empty").mkdir()
    assert run_cli("embed", *arguments(clips, tmp_path), "--model", repos["pretraining"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), lines
    assert (tmp_path / "foreign.parquet" / "data.bin").read_text() == "the user's"
    assert not (tmp_path / "e.parquet").exists()


def test_predict_keeps_its_one_clip_form_and_explains_batch_inputs(repos, clips, tmp_path, capsys):
    assert run_cli("predict", clips / "clip0.mp4", "--model", repos["classification"], "--json") == 0
    assert json.loads(capsys.readouterr().out)["task"] == "classification"
    assert run_cli("predict", clips, "--model", repos["classification"]) == 2
    assert "is a directory; expected a video file, or --out RESULTS.parquet" in capsys.readouterr().err
    out = tmp_path / "p.parquet"
    assert run_cli("predict", clips, "--model", repos["classification"], "--out", out, "--audio", clips / "x.wav") == 2
    assert "in a manifest's `audio` column" in capsys.readouterr().err
    assert not out.exists()


def test_the_parser_choices_agree_with_the_model_code():
    from tvlt.commands import embed
    from tvlt.embedding_tvlt import MODALITIES
    from tvlt.modeling_tvlt import FEATURE_POOLINGS

    assert embed.MODALITIES == MODALITIES and embed.POOLINGS == FEATURE_POOLINGS


# -- several processes ------------------------------------------------------------------------------------------------


def launcher(name: str) -> list[str]:
    executable = shutil.which(name, path=str(Path(sys.executable).parent)) or name
    if name == "torchrun":
        return [executable, "--nproc_per_node", "2"]
    # `--multi_gpu` is accelerate's multi-process launcher; without GPUs the processes run on CPU (gloo)
    return [executable, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
            "no", "--dynamo_backend", "no"]  # fmt: skip


@pytest.mark.parametrize("name", ["torchrun", pytest.param("accelerate", marks=pytest.mark.slow)])
def test_two_processes_give_the_single_process_rows(repos, clips, tmp_path, name):
    single, sharded = tmp_path / "single.parquet", tmp_path / "sharded.parquet"
    arguments = ["embed", str(clips), "--model", str(repos["pretraining"]), "--num-workers", "0", "--batch-size", "2"]
    assert run_cli(*arguments, "--out", single) == 1
    env = launcher_env()
    command = [*launcher(name), "-m", "tvlt", *arguments, "--out", str(sharded)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    # 2 clips failed: every rank exits with 1 (torchrun passes it on), and rank 0 prints one summary for the job
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.count("7 clips in") == 1, result.stderr[-3000:]
    assert sorted(path.name.split("-")[1] for path in part_files(sharded)) == ["r00000", "r00001"]
    expected, got = read_rows(single), read_rows(sharded)
    assert [{k: v for k, v in row.items() if k != "embedding"} for row in got] == [
        {k: v for k, v in row.items() if k != "embedding"} for row in expected
    ]
    for a, b in zip(got, expected, strict=True):
        if a["embedding"] is not None:
            assert np.abs(np.array(a["embedding"]) - np.array(b["embedding"])).max() <= 1e-5


@pytest.mark.parametrize("on_cpu, raised", [(True, 10), (False, 0)])
def test_decoding_workers_yield_the_cpu_to_the_models_threads(on_cpu, raised):
    """On a CPU device a worker decodes at a lower priority than the model's threads (a parallel matmul waits for its
    slowest thread); beside a GPU it keeps its priority. In a child process: niceness cannot be lowered again."""
    if os.nice(0) > 19 - raised:
        pytest.skip("the tests already run at too low a priority to see the change")
    code = (
        "import os\nfrom tvlt.commands._batch_job import _init_worker\n"
        f"before = os.nice(0)\n_init_worker(40, {on_cpu}, 0)\nprint(os.nice(0) - before)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == str(raised)


# -- hostile inputs ---------------------------------------------------------------------------------------------------


def _without_read_override():
    """Run a child so that file permissions bind it: as root, drop the capabilities that bypass them (the bounding
    set is what root's next program gets); as another user there is nothing to drop."""
    if os.geteuid() != 0:
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop, cap_dac_override, cap_dac_read_search = 24, 1, 2

    def drop():
        for capability in (cap_dac_override, cap_dac_read_search):
            if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def run_bound_by_permissions(*arguments, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tvlt", *map(str, arguments)]
    try:
        return subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, preexec_fn=_without_read_override()
        )
    except subprocess.SubprocessError as error:  # the capabilities could not be dropped (a locked-down container)
        pytest.skip(f"cannot run a child without root's permission override: {error}")


def test_unreadable_empty_audio_only_and_text_files_are_rows_naming_what_is_wrong(repos, clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clips / "clip0.mp4", folder / "good.mp4")
    shutil.copy(clips / "clip1.mp4", folder / "locked.mp4")
    (folder / "locked.mp4").chmod(0)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("meeting notes, saved with the wrong extension\n")
    write_clip(folder / "voice.mp4", None, waveform=tone(440.0, 1.0))  # an audio track only
    result = run_bound_by_permissions(
        "embed", folder, "--model", repos["pretraining"], "--out", "e.jsonl", cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr[-3000:]  # the job ran; 4 clips failed
    assert "Traceback" not in result.stderr
    errors = {Path(row["video"]).name: row["error"] for row in read_rows(tmp_path / "e.jsonl")}
    assert errors == {
        "good.mp4": None,
        "locked.mp4": f"MediaDecodingError: {folder / 'locked.mp4'}: cannot be read (permission denied).",
        "empty.mp4": f"MediaDecodingError: {folder / 'empty.mp4'}: the file is empty (0 bytes), not a media file.",
        "notes.mp4": errors["notes.mp4"],
        "voice.mp4": f"MediaDecodingError: {folder / 'voice.mp4'}: the file has no video stream.",
    }
    assert errors["notes.mp4"].startswith(f"MediaDecodingError: {folder / 'notes.mp4'}: cannot be opened as a media")


def test_an_unreadable_manifest_model_or_output_folder_is_one_line_exit_2(repos, clips, tmp_path):
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f"video\n{clips / 'clip0.mp4'}\n")
    manifest.chmod(0)
    model = tmp_path / "model"
    shutil.copytree(repos["pretraining"], model)
    (model / "config.json").chmod(0)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    cases = [
        (
            ["embed", manifest, "--model", repos["pretraining"], "--out", "a.jsonl"],
            "clips.csv: cannot read the manifest",
        ),
        (["embed", clips / "clip0.mp4", "--model", model, "--out", "b.jsonl"], "--model"),
        (
            ["embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", "locked/c.jsonl"],
            "cannot write in",
        ),
    ]
    for arguments, culprit in cases:
        result = run_bound_by_permissions(*arguments, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and culprit in lines[0], result.stderr[-2000:]
        assert "ermission denied" in lines[0]
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.jsonl").exists()


def test_a_one_hour_video_is_read_over_its_first_window_only(repos, tmp_path):
    """Without a window a clip is read from 0 for as much audio as the model takes (0.749 s for the tiny model),
    an hour-long file too: the same vector as that window asked for, and no decode of the hour."""
    from _av_toys import write_long_clip

    hour = write_long_clip(tmp_path / "hour.mp4", 3600, repeat_s=20)  # 20 s of packets repeated: seconds to make
    manifest = tmp_path / "window.csv"
    manifest.write_text(f"video,start,end\n{hour},0,0.749\n")
    for source, out in ((hour, "default.jsonl"), (manifest, "window.jsonl")):
        assert run_cli("embed", source, "--model", repos["pretraining"], "--out", tmp_path / out) == 0
    (default,), (window,) = read_rows(tmp_path / "default.jsonl"), read_rows(tmp_path / "window.jsonl")
    assert default["error"] is None and default["start"] is None
    np.testing.assert_allclose(default["embedding"], window["embedding"], atol=1e-6)


def test_hidden_and_temporary_files_in_a_folder_are_skipped_and_named_ones_taken(repos, clips, tmp_path):
    """A folder is the user's videos: hidden files (`.name`, also editors' `.#name` locks) and partial downloads or
    backups (`.part`, `.crdownload`, `~` suffixes: not a video extension) are skipped; a file named on the command
    line or in a manifest is always read."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("good.mp4", "~draft.mp4", ".hidden.mp4", ".#good.mp4", "good.mp4.part", "x.mp4.crdownload", "b.mp4~"):
        shutil.copy(clips / "clip0.mp4", folder / name)
    assert run_cli("embed", folder, "--model", repos["pretraining"], "--out", tmp_path / "a.jsonl") == 0
    assert sorted(Path(row["video"]).name for row in read_rows(tmp_path / "a.jsonl")) == ["good.mp4", "~draft.mp4"]
    named = [folder / ".hidden.mp4", folder / "good.mp4.part"]
    assert run_cli("embed", *named, "--model", repos["pretraining"], "--out", tmp_path / "b.jsonl") == 0
    assert [row["error"] for row in read_rows(tmp_path / "b.jsonl")] == [None, None]


@pytest.mark.parametrize(
    "options, tolerance",
    [
        (["--dtype", "float16"], 5e-2),
        (["--dtype", "bfloat16"], 2e-1),
        (["--num-workers", "0", "--batch-size", "100000"], 1e-5),
        (["--num-workers", "64", "--batch-size", "1"], 1e-5),
    ],
)
def test_half_precision_on_a_cpu_and_extreme_batches_give_one_row_per_clip(repos, clips, tmp_path, options, tolerance):
    good = [clips / f"clip{index}.mp4" for index in range(3)]
    common = ["embed", *good, "--model", repos["pretraining"]]
    assert run_cli(*common, "--out", tmp_path / "reference.jsonl", "--num-workers", "0") == 0
    assert run_cli(*common, "--out", tmp_path / "e.jsonl", *options) == 0
    reference, rows = read_rows(tmp_path / "reference.jsonl"), read_rows(tmp_path / "e.jsonl")
    assert [row["id"] for row in rows] == [row["id"] for row in reference]
    for row, expected in zip(rows, reference, strict=True):
        assert row["error"] is None
        difference = np.abs(np.array(row["embedding"]) - np.array(expected["embedding"])).max()
        assert difference <= tolerance * np.abs(np.array(expected["embedding"])).max()


@pytest.mark.parametrize("first, then", [(1, 2), (2, 1)])
def test_a_job_resumed_with_another_number_of_processes_has_one_row_per_clip(repos, clips, tmp_path, first, then):
    """Rows are skipped by id, not by rank: a job begun on one process and finished on two (or the other way round)
    holds each clip once, and no temporary part is left."""
    out = tmp_path / "e.parquet"
    env = launcher_env()

    def run(processes: int, *inputs) -> int:
        arguments = ["embed", *map(str, inputs), "--model", str(repos["pretraining"]), "--out", str(out)]
        arguments += ["--num-workers", "0", "--batch-size", "2"]
        if processes == 1:
            return run_cli(*arguments)
        done = subprocess.run(
            [*launcher("torchrun"), "-m", "tvlt", *arguments], env=env, capture_output=True, text=True, timeout=600
        )
        return done.returncode  # torchrun reports a rank's exit status 1 with a traceback of its own

    assert run(first, clips / "clip0.mp4", clips / "clip1.mp4", clips / "clip2.mp4") == 0
    assert run(then, clips) == 1  # the silent and the corrupt clip fail, as in a one-process job
    rows = read_rows(out)
    assert sorted(row["id"] for row in rows) == sorted(str(path) for path in clips.glob("*.mp4"))
    assert not [path.name for path in out.iterdir() if path.name.startswith(".part")]


def test_force_never_empties_a_folder_of_the_users_own_files(repos, clips, tmp_path, capsys):
    out = tmp_path / "mine.parquet"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work")
    assert run_cli("embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out, "--force") == 2
    assert "is a folder that no tvlt batch job made (it holds thesis.tex)" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize("options", [[], ["--pooling", "mean"]], ids=["same-options", "other-options"])
def test_a_second_job_on_a_running_jobs_output_is_refused_whatever_its_options(
    repos, clips, tmp_path, capsys, options
):
    """Two jobs on one --out at once: the second is refused while the first holds its lock, with the same options
    (it would write the same rows twice) and with others (it would mix two jobs' rows)."""
    out = tmp_path / "emb.parquet"
    base = ["embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out, "--num-workers", 0]
    assert run_cli(*base) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    running = OutputFolder(str(out), "parquet", rank=0)
    running.lock()
    try:
        capsys.readouterr()
        assert run_cli("embed", clips / "clip1.mp4", *base[2:], *options) == 2
    finally:
        running.release()
    err = capsys.readouterr().err
    assert "another tvlt job is writing there" in err or "refusing to resume into it" in err, err
    assert {path.name: path.read_bytes() for path in out.iterdir() if not path.name.startswith(".lock")} == {
        name: data for name, data in before.items() if not name.startswith(".lock")
    }


def test_an_id_repeated_across_two_manifests_of_one_job_is_refused_naming_both(repos, clips, tmp_path, capsys):
    first, second = tmp_path / "a.csv", tmp_path / "b.jsonl"
    first.write_text(f"video,id\n{clips / 'clip0.mp4'},intro\n")
    second.write_text(json.dumps({"video": str(clips / "clip1.mp4"), "id": "intro"}) + "\n")
    out = tmp_path / "e.jsonl"
    assert run_cli("embed", first, second, "--model", repos["pretraining"], "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert f"{second} line 1: id 'intro' repeats {first} line 2; ids must be unique" in err, err
    assert not out.exists()


def test_links_in_a_folder_to_files_outside_it_are_clips_and_links_to_folders_are_not_followed(repos, clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "linked.mp4").symlink_to(clips / "clip0.mp4")  # a file elsewhere, listed here: the user's choice
    (folder / "elsewhere").symlink_to(clips, target_is_directory=True)  # a whole tree elsewhere: not walked
    assert run_cli("embed", folder, "--model", repos["pretraining"], "--out", tmp_path / "e.jsonl") == 0
    assert [row["video"] for row in read_rows(tmp_path / "e.jsonl")] == [str(folder / "linked.mp4")]


# -- resuming after changes (merged from the batch branch) -----------------------------------------------------


def test_a_model_folder_retrained_in_place_is_another_model(repos, clips, tmp_path, capsys):
    """The identity holds the checkpoint's file hashes, not its path: new weights under the same folder are refused."""
    model = tmp_path / "model"
    shutil.copytree(repos["pretraining"], model)
    out = tmp_path / "emb.parquet"
    job = ["embed", clips / "clip0.mp4", "--model", model, "--out", out, "--num-workers", 0]
    assert run_cli(*job) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    save_tiny_checkpoint(model, "pretraining", seed=1)
    capsys.readouterr()
    assert run_cli(*job) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"refusing to resume into it: it was made with another model or checkpoint revision ('{model}'" in line
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_clips_added_to_an_input_folder_are_picked_up_on_resume(repos, clips, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("clip0.mp4", "corrupt.mp4"):
        shutil.copy(clips / name, folder / name)
    out = tmp_path / "emb.jsonl"
    job = ["embed", folder, "--model", repos["pretraining"], "--out", out, "--num-workers", 0]
    assert run_cli(*job) == 1
    before = {path.name: path.read_bytes() for path in part_files(out)}
    shutil.copy(clips / "clip1.mp4", folder / "clip1.mp4")
    (folder / "later").mkdir()
    shutil.copy(clips / "clip2.mp4", folder / "later" / "clip2.mp4")
    capsys.readouterr()
    assert run_cli(*job) == 1
    assert "4 clips in" in (err := capsys.readouterr().err) and "2 written now" in err and "2 already there" in err
    rows = read_rows(out)
    assert [row["id"] for row in rows] == [str(folder / name) for name in ("clip0.mp4", "clip1.mp4", "corrupt.mp4",
                                                                          "later/clip2.mp4")]  # fmt: skip
    assert {path.name: path.read_bytes() for path in part_files(out) if path.name in before} == before


def test_a_manifest_row_whose_window_changed_under_the_same_id_is_refused_on_resume(repos, clips, tmp_path, capsys):
    """Without an `id` the window is part of the default id, so a new window is a new row; with an explicit `id`, the
    id is the same and its earlier row would be kept for another window: refused, naming the id and the change."""
    manifest, out = tmp_path / "m.csv", tmp_path / "e.jsonl"
    job = ["embed", manifest, "--model", repos["pretraining"], "--out", out, "--num-workers", 0]
    manifest.write_text(f"video,start,end,id\n{clips / 'clip4.mp4'},0,1,talk\n")
    assert run_cli(*job) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    manifest.write_text(f"video,start,end,id\n{clips / 'clip4.mp4'},0.5,1.5,talk\n{clips / 'clip0.mp4'},,,new\n")
    capsys.readouterr()
    assert run_cli(*job) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "id 'talk'" in lines[0] and "start 0 -> 0.5" in lines[0], lines
    assert "--force" in lines[0]
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    manifest.write_text(f"video,start,end,id\n{clips / 'clip4.mp4'},0,1,talk\n{clips / 'clip0.mp4'},,,new\n")
    assert run_cli(*job) == 0  # the same row again and a new one: resumed
    assert [row["id"] for row in read_rows(out)] == ["new", "talk"]


def test_a_resumed_job_with_fewer_processes_leaves_a_running_ranks_temporary_parts_alone(
    repos, clips, tmp_path, capsys
):
    """Rank 0 removes the half-written parts of ranks the job does not have, but only when no process holds them."""
    out = tmp_path / "emb.parquet"
    assert run_cli("embed", clips / "clip0.mp4", "--model", repos["pretraining"], "--out", out) == 0
    running = OutputFolder(str(out), "parquet", rank=1, world_size=2)
    running.lock()
    writing = out / ".part-r00001-20200101T000000-1-00000.parquet.tmp"
    writing.write_bytes(b"being written by rank 1 of another job")
    try:
        assert run_cli("embed", clips / "clip1.mp4", "--model", repos["pretraining"], "--out", out) == 2
    finally:
        running.release()
    assert "another tvlt job is writing there (rank 1)" in capsys.readouterr().err and writing.exists()
    assert run_cli("embed", clips / "clip1.mp4", "--model", repos["pretraining"], "--out", out) == 0
    assert not writing.exists() and len(read_rows(out)) == 2


def test_a_folder_that_cannot_be_listed_is_one_line_not_silently_skipped(repos, clips, tmp_path):
    """os.walk skips a folder it cannot list: the job would quietly lack its clips."""
    folder = tmp_path / "in"
    (folder / "locked").mkdir(parents=True)
    shutil.copy(clips / "clip0.mp4", folder / "a.mp4")
    shutil.copy(clips / "clip1.mp4", folder / "locked" / "b.mp4")
    (folder / "locked").chmod(0)
    try:
        result = run_bound_by_permissions(
            "embed", "in", "--model", repos["pretraining"], "--out", "e.jsonl", cwd=tmp_path
        )
    finally:
        (folder / "locked").chmod(0o755)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("tvlt embed: error: in/locked: cannot list this folder (Permission denied)"), lines
    assert not (tmp_path / "e.jsonl").exists()
