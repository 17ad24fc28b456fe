"""`tvlt predict --chunk-length S --stride S --out PICTURE`: per-window output, the timeline picture and how it is
written, and bad arguments. Tiny random checkpoints (0.75 s windows) and generated clips."""

import json
import os
import re
import stat

import numpy as np
import PIL.Image
import pytest
from _av_toys import load_classifier, moving_square_frames, tone, write_clip

from tvlt.cli import main
from tvlt.commands._timeline_picture import PALETTE, clock, clock_decimals
from tvlt.retrieval_tvlt import TvltAudioVisualMatcher


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    # an animated GIF is a video too (frames only); with --audio it can be classified, and --out could name it
    frames = moving_square_frames(8)
    gif = folder / "anim.gif"
    PIL.Image.fromarray(frames[0]).save(gif, save_all=True, append_images=[PIL.Image.fromarray(f) for f in frames[1:]])
    return {
        "clip": write_clip(folder / "clip.mp4", moving_square_frames(16), waveform=tone(440.0, 2.0)),
        "gif": gif,
    }


def predict(*arguments) -> int:
    return main(["predict", *map(str, arguments)])


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tvlt predict: error: "), captured.err
    assert captured.out == ""
    return lines[0]


# -- output -----------------------------------------------------------------------------------------------------------


def test_json_gives_each_window_and_the_mean_as_the_pipeline_does(repos, media, capsys):
    arguments = [
        media["clip"],
        "--model",
        repos["classification"],
        "--chunk-length",
        0.5,
        "--stride",
        0.1,
        "--top-k",
        2,
    ]
    assert predict(*arguments, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    classifier = load_classifier(repos["classification"])
    expected = classifier(str(media["clip"]), chunk_length_s=0.5, stride_length_s=0.1, top_k=2)
    assert result["chunk_length_s"] == 0.5 and result["stride_length_s"] == 0.1
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0.0, 0.5), (0.3, 0.8), (0.6, 1.1), (0.9, 1.4)] + [
        (1.2, 1.7),
        (1.5, 2.0),
    ]
    for got, want in zip(result["windows"], expected["windows"], strict=True):
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want["predictions"]]
        assert [p["score"] for p in got["predictions"]] == pytest.approx([p["score"] for p in want["predictions"]])
    assert [p["score"] for p in result["predictions"]] == pytest.approx([p["score"] for p in expected["aggregate"]])
    assert "timeline" not in result

    assert predict(*arguments) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "6 windows of 0.5 s, one every 0.3 s" in lines
    assert re.fullmatch(
        r"  00:00\.3-00:00\.8  \w+ 0\.\d{4}  \w+ 0\.\d{4}", lines[lines.index("label probabilities, per window:") + 2]
    )
    assert lines[-3] == "mean over the 6 windows:"


def test_out_draws_the_timeline_and_implies_model_length_windows(repos, media, tmp_path, capsys):
    out = tmp_path / "timeline.png"
    assert predict(media["clip"], "--model", repos["classification"], "--out", out, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["chunk_length_s"] == "auto" and result["timeline"] == str(out)
    assert [(w["start"], w["end"]) for w in result["windows"]] == [
        (0.0, 0.748843),
        (0.748843, 1.497686),
        (1.251157, 2.0),
    ]
    with PIL.Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width == 1200 and 400 < picture.height < 700
        pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    # the lines of the three labels are drawn in the first three colours
    for colour in PALETTE[:3]:
        assert (np.abs(pixels.astype(int) - colour).sum(1) < 30).sum() > 500, colour
    assert sorted(os.listdir(tmp_path)) == ["timeline.png"]  # no temporary file left behind


# .xbm: a format without colour gets the picture in the first mode it holds, as `tvlt reconstruct` does
@pytest.mark.parametrize(
    "name, format_name", [("t.jpg", "JPEG"), ("t.webp", "WEBP"), ("t.TIFF", "TIFF"), ("t.xbm", "XBM")]
)
def test_the_picture_format_follows_the_extension(repos, media, tmp_path, capsys, name, format_name):
    out = tmp_path / name
    assert predict(media["clip"], "--model", repos["regression"], "--out", out) == 0
    assert f"timeline: {out}" in capsys.readouterr().out
    with PIL.Image.open(out) as picture:
        assert picture.format == format_name


def test_a_pre_training_checkpoint_gives_the_match_score_per_window(repos, media, tmp_path, capsys):
    out = tmp_path / "match.pdf"
    arguments = [media["clip"], "--model", repos["pretraining"], "--chunk-length", 0.5, "--out", out]
    assert predict(*arguments, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    matcher = TvltAudioVisualMatcher.from_pretrained(repos["pretraining"])
    windows = [(w["start"], w["end"]) for w in result["windows"]]
    assert windows == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    expected = matcher.score([{"video": str(media["clip"]), "start": start, "end": end} for start, end in windows])
    assert [w["match_score"] for w in result["windows"]] == pytest.approx(expected, abs=1e-6)
    assert result["match_score"] == pytest.approx(np.mean(expected), abs=1e-6)
    assert out.read_bytes().startswith(b"%PDF")
    assert predict(*arguments) == 0
    assert "mean over the 4 windows: " in capsys.readouterr().out


def test_an_existing_picture_is_replaced_keeping_its_permissions(repos, media, tmp_path, capsys):
    out = tmp_path / "timeline.png"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    assert predict(media["clip"], "--model", repos["classification"], "--out", out) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["timeline.png"]


def test_a_failed_run_writes_nothing_and_leaves_the_old_picture(repos, media, tmp_path, capsys):
    out = tmp_path / "timeline.png"
    out.write_bytes(b"old")
    assert predict(media["clip"], "--model", repos["classification"], "--out", out, "--chunk-length", 5) == 2
    assert "--chunk-length 5 is longer than the 0.75 s of audio this model takes" in one_error_line(capsys)
    assert out.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["timeline.png"]


def test_clock_formats_times_as_mm_ss_or_h_mm_ss():
    assert clock(83.5, 1) == "01:23.5"
    assert clock(59.996, 2) == "01:00.00"
    assert clock(3725) == "1:02:05" and clock(65, hours=True) == "0:01:05"
    assert clock_decimals(0.0, 24.0) == 0 and clock_decimals(0.5, 1.0) == 1 and clock_decimals(0.748843) == 2


# -- bad arguments ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda m, r, t: ["--stride", "0.1"], r"--stride needs --chunk-length \(or --out PICTURE\)"),
        (lambda m, r, t: ["--hop", "0.1"], r"--hop needs --chunk-length \(or --out PICTURE\)"),
        # the message says what the stride is and gives a step that works, in both spellings
        (
            lambda m, r, t: ["--chunk-length", "10", "--stride", "10"],
            r"--stride 10 is what each window shares with each neighbour, so with --chunk-length 10 the windows "
            r"would not move on .*: give a stride below 5, or the step itself with --hop \(e.g. --hop 5\)",
        ),
        (lambda m, r, t: ["--chunk-length", "1", "--stride", "0.5"], "give a stride below 0.5"),
        (lambda m, r, t: ["--chunk-length", "1", "--hop", "1.5"], "--hop 1.5 must be more than 0 and at most --chunk"),
        (lambda m, r, t: ["--chunk-length", "1", "--hop", "0"], "--hop 0 must be more than 0"),
        (lambda m, r, t: ["--out", str(t)], "is a directory; give the path of the picture"),
        # a wrong --out names the few picture formats that suit and the batch job's
        (
            lambda m, r, t: ["--out", str(t / "timeline")],
            r"unknown picture format \(no extension\); give a file name ending in \.png \(lossless\), \.jpg, "
            r"\.webp, \.tiff or \.pdf\. Or RESULTS\.parquet / RESULTS\.jsonl for a batch job's results\.$",
        ),
        (lambda m, r, t: ["--out", str(t / "timeline.mp4")], r"unknown picture format \.mp4; .* RESULTS\.parquet"),
        (lambda m, r, t: ["--out", str(t / "no" / "such" / "t.png")], "the folder .* does not exist"),
    ],
)
def test_bad_timeline_arguments_are_one_line_before_the_model_loads(
    repos, media, tmp_path, capsys, make_arguments, message
):
    # a --model that does not exist: the timeline arguments are checked first
    assert predict(media["clip"], "--model", tmp_path / "no-such-model", *make_arguments(media, repos, tmp_path)) == 2
    assert re.search(message, one_error_line(capsys))
    assert [name for name in os.listdir(tmp_path)] == []


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--chunk-length", "auto", "--stride", "0.4"],
            "--stride 0.4 is what each window shares with each neighbour, so with --chunk-length auto (0.75 s for "
            "this model) the windows would not move on",
        ),
        (["--chunk-length", "auto", "--hop", "0.8"], "--hop 0.8 must be more than 0 and at most --chunk-length auto"),
        (["--chunk-length", "0.05"], "--chunk-length 0.05 is shorter than the 0.093 s of audio that make one audio"),
    ],
)
def test_windows_the_model_cannot_take_are_refused(repos, media, capsys, arguments, message):
    assert predict(media["clip"], "--model", repos["classification"], *arguments) == 2
    assert message in one_error_line(capsys)


def test_a_picture_that_cannot_be_written_is_one_line_naming_out(repos, media, tmp_path, capsys, monkeypatch):
    from tvlt.commands import _timeline_picture

    def disk_full(*arguments):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_timeline_picture, "save", disk_full)
    out = tmp_path / "timeline.png"
    assert predict(media["clip"], "--model", repos["classification"], "--out", out) == 2
    assert one_error_line(capsys).endswith(f"--out {out}: cannot write the picture (No space left on device).")


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "1e400", "long"])
def test_bad_chunk_lengths_are_refused_by_the_parser(repos, media, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        predict(media["clip"], "--model", repos["classification"], "--chunk-length", value)
    assert exit_info.value.code == 2
    assert "expected a positive number of seconds or 'auto'" in capsys.readouterr().err


@pytest.mark.parametrize("chunk_length", ["0.5", "auto"])
def test_hop_is_the_step_between_windows_and_means_the_stride_it_leaves(repos, media, capsys, chunk_length):
    """`--hop H` and `--stride (chunk - H) / 2` are one rule: the same windows and result; H exactly, no drift."""
    arguments = [media["clip"], "--model", repos["classification"], "--chunk-length", chunk_length, "--json"]
    assert predict(*arguments, "--hop", "0.25") == 0
    by_hop = json.loads(capsys.readouterr().out)
    starts = [window["start"] for window in by_hop["windows"]]
    assert starts[:3] == [0.0, 0.25, 0.5]
    stride = (by_hop["windows"][0]["end"] - 0.25) / 2
    assert by_hop["stride_length_s"] == pytest.approx(stride, abs=1e-6)
    assert predict(*arguments, "--stride", repr(stride)) == 0
    by_stride = json.loads(capsys.readouterr().out)
    assert len(by_stride["windows"]) == len(by_hop["windows"])
    for a, b in zip(by_stride["windows"], by_hop["windows"]):  # the stride's windows drift by 1 us each (auto)
        assert (a["start"], a["end"]) == pytest.approx((b["start"], b["end"]), abs=1e-5)
        assert [p["score"] for p in a["predictions"]] == pytest.approx([p["score"] for p in b["predictions"]])


def test_hop_and_stride_cannot_both_be_given(repos, media, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict(
            media["clip"], "--model", repos["classification"], "--chunk-length", "1", "--hop", ".5", "--stride", ".1"
        )
    assert exit_info.value.code == 2
    assert "argument --stride: not allowed with argument --hop" in capsys.readouterr().err


def test_a_stride_that_is_not_finite_is_refused_by_the_parser(repos, media, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict(media["clip"], "--model", repos["classification"], "--chunk-length", "1", "--stride", "inf")
    assert exit_info.value.code == 2
    assert "argument --stride: expected a finite number of seconds, got 'inf'" in capsys.readouterr().err


def test_the_picture_never_replaces_an_input_or_a_special_file(repos, media, tmp_path, capsys):
    gif_bytes = media["gif"].read_bytes()
    arguments = ["--model", repos["classification"], "--audio", media["clip"]]
    assert predict(media["gif"], *arguments, "--out", media["gif"]) == 2
    assert "is the VIDEO file: it would be overwritten" in one_error_line(capsys)
    link = tmp_path / "link.gif"
    link.symlink_to(media["gif"])
    assert predict(media["gif"], *arguments, "--out", link) == 2
    assert "is the VIDEO file" in one_error_line(capsys)
    assert media["gif"].read_bytes() == gif_bytes
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert predict(media["clip"], "--model", repos["classification"], "--out", fifo) == 2
    assert "exists and is not a regular file" in one_error_line(capsys)
