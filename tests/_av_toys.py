"""Small synthetic media for the end-to-end tests: clips with and without sound, tiny checkpoints, a toy dataset."""

import csv
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from conftest import tiny_config


SAMPLING_RATE = 44100
TINY_PROCESSOR = dict(image_size=32, patch_size=[8, 8], num_frames=4, spectrogram_length=64, feature_size=32)
TOY_CLASSES = ("bright_high", "dark_low")


def write_clip(
    path: Path,
    frames: np.ndarray | None,
    fps: int = 8,
    waveform: np.ndarray | None = None,
    sampling_rate: int = SAMPLING_RATE,
) -> Path:
    """Encode `frames` `(T, H, W, 3)` uint8 (H.264) and, if given, a mono float `waveform` (AAC) into `path`; with
    `frames=None`, the audio alone (a sound track in a video container)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        if frames is not None:
            video = container.add_stream("libx264", rate=fps)
            video.height, video.width = frames.shape[1:3]
            video.pix_fmt = "yuv420p"
        audio = None
        if waveform is not None:
            audio = container.add_stream("aac", rate=sampling_rate)
            audio.layout = "mono"
        if frames is not None:
            for index, image in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode())
        if audio is not None:
            for first in range(0, len(waveform), 1024):
                chunk = np.ascontiguousarray(waveform[None, first : first + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = sampling_rate, first, Fraction(1, sampling_rate)
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
    return path


def tone(frequency: float, seconds: float, sampling_rate: int = SAMPLING_RATE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return (0.5 * np.sin(2 * np.pi * frequency * time) + 0.02 * rng.standard_normal(time.size)).astype(np.float32)


def moving_square_frames(num_frames: int = 8, size: int = 32, level: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.full((num_frames, size, size, 3), level, dtype=np.uint8)
    for index in range(num_frames):
        top = (3 * index) % (size - 8)
        frames[index, top : top + 8, 4:12] = (230, 40, 40)
    noise = rng.integers(-10, 10, frames.shape)
    return np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)


def write_edge_clips(folder: Path, silent_frames: int) -> dict[str, Path]:
    """The clips that test the edges of reading: `short` (2 frames, 0.25 s of sound), `silent` (no audio track) and
    `speech` (a 16 kHz wav, 0.6 s)."""
    import soundfile

    speech = folder / "speech.wav"
    soundfile.write(speech, tone(300.0, 0.6, sampling_rate=16000, seed=3), 16000)
    return {
        "short": write_clip(folder / "short.mp4", moving_square_frames(2, seed=1), waveform=tone(880.0, 0.25, seed=1)),
        "silent": write_clip(folder / "silent.mp4", moving_square_frames(silent_frames, seed=2)),
        "speech": speech,
    }


def toy_clip(path: Path, class_name: str, seed: int, seconds: float = 1.0) -> Path:
    """A clip of the learnable toy task: bright frames with a high tone, or dark frames with a low tone."""
    bright = class_name == "bright_high"
    frames = moving_square_frames(int(8 * seconds), level=210 if bright else 35, seed=seed)
    return write_clip(path, frames, waveform=tone(1800.0 if bright else 250.0, seconds, seed=seed))


def toy_dataset(folder: Path, clips_per_class: int = 4) -> Path:
    """Toy clips in `folder` and `folder/train.csv` (video,label); returns the CSV path."""
    rows = []
    for class_index, class_name in enumerate(TOY_CLASSES):
        for number in range(clips_per_class):
            name = f"{class_name}_{number}.mp4"
            toy_clip(folder / name, class_name, seed=100 * class_index + number)
            rows.append({"video": name, "label": class_name})
    csv_path = folder / "train.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["video", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return csv_path


def tiny_processor():
    from tvlt import TvltFeatureExtractor, TvltImageProcessor, TvltProcessor

    size = TINY_PROCESSOR["image_size"]
    return TvltProcessor(
        image_processor=TvltImageProcessor(
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            patch_size=TINY_PROCESSOR["patch_size"],
            num_frames=TINY_PROCESSOR["num_frames"],
        ),
        feature_extractor=TvltFeatureExtractor(
            spectrogram_length=TINY_PROCESSOR["spectrogram_length"],
            feature_size=TINY_PROCESSOR["feature_size"],
            patch_size=TINY_PROCESSOR["patch_size"],
        ),
    )


def save_tiny_checkpoint(folder: Path, kind: str = "classification", seed: int = 0, **config_overrides) -> Path:
    """A tiny TVLT repo folder (model + processor + code files): `kind` is classification, regression,
    multi_label or pretraining."""
    from tvlt import TvltForAudioVisualClassification, TvltForPreTraining

    torch.manual_seed(seed)
    heads = {
        "classification": dict(
            num_labels=3,
            id2label={0: "negative", 1: "neutral", 2: "positive"},
            problem_type="single_label_classification",
        ),
        "multi_label": dict(
            num_labels=3, id2label={0: "happy", 1: "sad", 2: "angry"}, problem_type="multi_label_classification"
        ),
        "regression": dict(num_labels=1, id2label={0: "sentiment"}, problem_type="regression"),
        "pretraining": {},
    }
    config = tiny_config(**{**heads[kind], **config_overrides})
    if "id2label" in heads[kind]:
        config.label2id = {label: index for index, label in config.id2label.items()}
    model = (TvltForPreTraining if kind == "pretraining" else TvltForAudioVisualClassification)(config).eval()
    model.save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
    return folder


def load_classifier(repo, **kwargs):
    """The audio-visual-classification pipeline of a local TVLT repo, on the CPU, with the package's classes."""
    from transformers import pipeline

    from tvlt import TvltAudioVisualClassificationPipeline

    return pipeline(
        "audio-visual-classification",
        model=str(repo),
        pipeline_class=TvltAudioVisualClassificationPipeline,
        device="cpu",
        **kwargs,
    )


def write_long_clip(
    path: Path,
    seconds: float,
    fps: int = 4,
    size: int = 32,
    sampling_rate: int = 16000,
    keyframe_interval_s: float = 1.0,
    scene_s: float = 20.0,
    repeat_s: float | None = None,
) -> Path:
    """A long clip (mp4, or what the suffix of `path` says), made as it is written so that memory stays small even for
    hours: `size`x`size` H.264 at `fps` with a keyframe every `keyframe_interval_s` and no B-frames, and mono AAC at
    `sampling_rate`. Every `scene_s` seconds the scene changes (brightness of the frames and pitch of the tone cycle
    through four steps), so that windows differ. With `repeat_s`, only that much is encoded and its packets are
    repeated with shifted timestamps up to `seconds` (an hour then takes a few seconds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if repeat_s is None or repeat_s >= seconds:
        return _encode_long_clip(path, seconds, fps, size, sampling_rate, keyframe_interval_s, scene_s)
    chunk = _encode_long_clip(
        path.with_name(path.name + ".chunk.mkv"), repeat_s, fps, size, sampling_rate, keyframe_interval_s, scene_s
    )
    _repeat_packets(chunk, path, seconds, repeat_s)
    chunk.unlink()
    return path


def _encode_long_clip(path: Path, seconds, fps, size, sampling_rate, keyframe_interval_s, scene_s) -> Path:
    import av

    levels, pitches = (40, 110, 180, 240), (220.0, 440.0, 880.0, 1760.0)
    rng = np.random.default_rng(0)
    noise = rng.integers(-8, 8, (size, size, 3))
    keyint = max(1, round(keyframe_interval_s * fps))
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(
            "libx264", rate=fps, options={"x264-params": f"keyint={keyint}:scenecut=0:bframes=0"}
        )
        video.height = video.width = size
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=sampling_rate)
        audio.layout = "mono"
        audio.bit_rate = 24000
        num_frames, num_samples = round(seconds * fps), round(seconds * sampling_rate)
        block = 1024
        next_sample = 0
        for index in range(num_frames):
            scene = int(index / fps // scene_s) % len(levels)
            image = np.full((size, size, 3), levels[scene], dtype=np.int64) + noise
            top = (2 * index) % (size - 8)
            image[top : top + 8, 4:12] = (230, 40, 40)
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame))
            # the audio up to the next video frame, interleaved so that readers never buffer far ahead
            until = min(num_samples, round((index + 1) * sampling_rate / fps))
            while next_sample < until:
                count = min(block, num_samples - next_sample)
                time = (next_sample + np.arange(count)) / sampling_rate
                pitch = np.array(pitches)[(time // scene_s).astype(int) % len(pitches)]
                chunk = (0.4 * np.sin(2 * np.pi * pitch * time)).astype(np.float32)[None]
                audio_frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
                audio_frame.sample_rate = sampling_rate
                audio_frame.pts, audio_frame.time_base = next_sample, Fraction(1, sampling_rate)
                container.mux(audio.encode(audio_frame))
                next_sample += count
        container.mux(video.encode())
        container.mux(audio.encode())
    return path


def _repeat_packets(chunk: Path, path: Path, seconds: float, chunk_seconds: float) -> None:
    """Write the packets of `chunk` again and again, shifted by `chunk_seconds` each time, up to `seconds`."""
    import av

    with av.open(str(chunk)) as source, av.open(str(path), "w") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in source.streams}
        # the packets of [0, chunk_seconds): AAC's priming and padding would overlap the next repetition
        packets = [
            (
                packet.stream.index,
                bytes(packet),
                packet.pts,
                packet.dts,
                packet.duration,
                packet.is_keyframe,
                packet.time_base,
            )
            for packet in source.demux()
            if packet.pts is not None and packet.dts is not None and 0 <= packet.pts * packet.time_base < chunk_seconds
        ]
        for repetition in range(math.ceil(seconds / chunk_seconds)):
            for index, data, pts, dts, duration, keyframe, time_base in packets:
                offset = int(repetition * chunk_seconds / time_base)
                packet = av.Packet(data)
                packet.stream, packet.time_base = streams[index], time_base
                packet.pts, packet.dts, packet.duration, packet.is_keyframe = (
                    pts + offset,
                    dts + offset,
                    duration,
                    keyframe,
                )
                out.mux(packet)
