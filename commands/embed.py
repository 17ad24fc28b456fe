"""`tvlt embed INPUT... --model DIR_OR_ID --out RESULTS.parquet`: one embedding per clip, for collections of clips."""

import argparse

from ..checkpoints.loading import check_model_argument
from ._argtypes import seconds
from ._batch import add_batch_arguments, plan_batch_job
from ._clip_and_model import add_model_arguments, quiet_transformers


HELP = (
    "Embed video clips with any TVLT checkpoint: one vector per clip (audio-visual, video-only or audio-only), "
    "written to Parquet or JSON Lines. Takes files, folders, glob patterns and CSV/JSONL manifests; resumes where it "
    "stopped; shards the clips by rank under torchrun or accelerate launch."
)

# embedding_tvlt.MODALITIES and modeling_tvlt.FEATURE_POOLINGS, restated so that parsing needs no torch (a test checks
# that they agree)
MODALITIES = ("audio-visual", "video", "audio")
POOLINGS = ("cls", "mean")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders (their video files, recursively), glob patterns (quoted), or CSV/JSONL manifests "
        "with the columns video, audio, start, end, id",
    )
    add_model_arguments(parser)
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
        help="cls: the CLS token, what the classification and matching heads read (default); mean: the mean of the "
        "real (non-padding) tokens",
    )
    parser.add_argument(
        "--start", type=seconds, metavar="S", help="start of the time window of clips without their own (default: 0)"
    )
    parser.add_argument(
        "--end",
        type=seconds,
        metavar="S",
        help="end of the time window of clips without their own (default: start + the audio span the model takes)",
    )
    add_batch_arguments(parser)


def validate(args: argparse.Namespace) -> None:
    check_model_argument(args.model)
    args.job = plan_batch_job(args.inputs, args)


def run(args: argparse.Namespace) -> int:
    with quiet_transformers():
        from ._batch_job import EmbedTask, run_batch_job

        return run_batch_job(args.job, args, lambda config: EmbedTask(config, args.modality, args.pooling))


__all__ = ["HELP", "add_arguments", "run", "validate"]
