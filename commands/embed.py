"""`tvlt embed INPUT... --model DIR_OR_ID --out RESULTS.parquet`: one embedding per clip, for collections of clips."""

import argparse

from ..checkpoints.loading import check_model_argument
from ._argtypes import option_group, seconds
from ._batch import BATCH_OPTIONS, add_batch_arguments, plan_batch_job
from ._clip_and_model import (
    AUDIO_SPAN_TEXT,
    SOURCE_AND_DEVICE_OPTIONS,
    WINDOW_OPTIONS,
    add_model_arguments,
    quiet_transformers,
)


HELP = (
    "Embed clips with any TVLT checkpoint: one vector per clip (audio-visual, video or audio), written to Parquet or "
    "JSON Lines; resumes where it stopped; shards the clips by rank under torchrun or accelerate launch."
)
USAGE = "INPUT... --model DIR_OR_ID --out RESULTS.parquet|RESULTS.jsonl [options]"
EXAMPLES = [
    "tvlt embed clips/ --model tvlt-base --out embeddings.parquet",
    "tvlt embed manifest.csv --model tvlt-base --modality video --pooling mean --out video.jsonl",
    "torchrun --nproc_per_node 4 -m tvlt embed clips/ --model tvlt-base --out embeddings.parquet",
]

# embedding_tvlt.MODALITIES and modeling_tvlt.FEATURE_POOLINGS, restated so that parsing needs no torch (a test checks
# that they agree)
MODALITIES = ("audio-visual", "video", "audio")
POOLINGS = ("cls", "mean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for title in (WINDOW_OPTIONS, BATCH_OPTIONS, SOURCE_AND_DEVICE_OPTIONS):
        option_group(parser, title)  # the order of the headings in --help
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders (their video files, recursively), quoted glob patterns, or CSV/JSONL manifests "
        "(columns video, audio, start, end, id)",
    )
    add_model_arguments(parser)
    add_batch_arguments(parser)
    parser.add_argument(
        "--modality",
        choices=MODALITIES,
        default="audio-visual",
        help="embed video and audio together (default), or the video or the audio alone",
    )
    parser.add_argument(
        "--pooling",
        choices=POOLINGS,
        default="cls",
        help="cls: the CLS token the classification and matching heads read (default); mean: the mean of the real "
        "(non-padding) tokens",
    )
    window = option_group(parser, WINDOW_OPTIONS)
    window.add_argument(
        "--start", type=seconds, metavar="S", help="start of the window of clips without their own (default: 0)"
    )
    window.add_argument(
        "--end",
        type=seconds,
        metavar="S",
        help=f"end of the window of clips without their own (default: start + {AUDIO_SPAN_TEXT})",
    )


def validate(args: argparse.Namespace) -> None:
    check_model_argument(args.model)
    args.job = plan_batch_job(args.inputs, args)


def run(args: argparse.Namespace) -> int:
    with quiet_transformers():
        from ._batch_job import EmbedTask, run_batch_job

        return run_batch_job(args.job, args, lambda config: EmbedTask(config, args.modality, args.pooling))


__all__ = ["EXAMPLES", "HELP", "USAGE", "add_arguments", "run", "validate"]
