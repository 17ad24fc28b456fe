"""Batch jobs of `tvlt embed` and `tvlt predict`: their arguments, their inputs (files, folders, globs, CSV/JSONL
manifests) and their output folder, all checked with the standard library only, so that a bad argument or a malformed
manifest is answered at once, before torch and transformers are imported and before anything is written.

The job itself runs in `_batch_job.py`.
"""

import argparse
import csv
import functools
import glob
import io
import json
import math
import os
from dataclasses import dataclass

from . import CommandError
from ._argtypes import MAX_SECONDS, non_negative_int, option_group, positive_int


# Output formats, by the extension of --out (a folder of parts: see _batch_output.py)
OUTPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl"}
# The file that holds a job's identity in its output folder (readers skip files starting with "_" or ".")
JOB_FILE = "_tvlt_job.json"
MANIFEST_SUFFIXES = (".csv", ".jsonl")
# What a row of a job names of its clip (a clip dict's keys, inputs_tvlt.CLIP_KEYS, less the waveform rate): the
# columns of a manifest besides `id`, and columns of every output row
CLIP_COLUMNS = ("video", "audio", "start", "end")
MANIFEST_COLUMNS = (*CLIP_COLUMNS, "id")
# What a folder is searched for (case-insensitive); files named one by one or by a glob are taken whatever their name
VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".flv", ".wmv", ".3gp",
    ".ogv", ".gif",
)  # fmt: skip
DTYPES = ("float32", "float16", "bfloat16")
BATCH_OPTIONS = "batch jobs (several files, a folder, a glob or a manifest)"
_GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class ClipRow:
    """One clip of a batch job. `video`/`audio` are as the user wrote them; `*_path` are the files to read."""

    id: str
    video: str
    audio: str | None
    start: float | None
    end: float | None
    video_path: str
    audio_path: str | None

    def as_clip(self) -> dict:
        """The clip as the pipeline and `embedding_tvlt.prepare_inputs` take it."""
        clip = {"video": self.video_path, "start": self.start, "end": self.end}
        if self.audio_path is not None:
            clip["audio"] = self.audio_path
        return clip


def add_batch_arguments(parser: argparse.ArgumentParser, out: bool = True) -> None:
    """--out (unless the command has its own), --batch-size, --num-workers, --dtype, --rows-per-part, --force, --quiet
    (--device: add_model_arguments)."""
    if out:
        parser.add_argument(
            "--out",
            metavar="RESULTS.parquet|RESULTS.jsonl",
            help="folder of result parts to write (Parquet or JSON Lines, by its extension); running the same command "
            "again resumes, skipping the clips already there",
        )
    group = option_group(parser, BATCH_OPTIONS)
    group.add_argument(
        "--batch-size", type=positive_int, default=8, metavar="N", help="clips per forward pass (default: 8)"
    )
    group.add_argument(
        "--num-workers",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="DataLoader worker processes that decode the next clips while the model runs (default: 2; 0: none)",
    )
    group.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        metavar="DTYPE",
        help=f"model precision: {', '.join(DTYPES)} (default: float32)",
    )
    group.add_argument(
        "--rows-per-part",
        type=positive_int,
        default=1000,
        metavar="N",
        help="rows per part file (default: 1000; a part is also written every 5 minutes): at most this much work is "
        "lost when a job is killed",
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="start over: delete the parts of an earlier job in --out (only tvlt's own files) instead of resuming",
    )
    group.add_argument("--quiet", action="store_true", help="no progress bar and no summary (failures still are)")


def looks_like_batch_input(text: str) -> bool:
    """A folder, a glob pattern or a manifest (rather than one video file)."""
    if os.path.isdir(text):
        return True
    if not os.path.exists(text) and _GLOB_CHARACTERS & set(text):
        return True
    return _is_manifest(text)


def _is_manifest(text: str) -> bool:
    return os.path.isfile(text) and text.lower().endswith(MANIFEST_SUFFIXES)


# -- inputs -----------------------------------------------------------------------------------------------------------


def list_clips(
    inputs: list[str], start: float | None = None, end: float | None = None, out: str | None = None
) -> list[ClipRow]:
    """
    The clips of `inputs`, in order: a video file, a folder (its video files, recursively, sorted), a glob pattern
    (the files it matches, sorted) or a manifest (.csv or .jsonl, its rows). `start`/`end` are the window of the clips
    that do not give their own. Nothing inside `out` (the job's output folder) is ever an input: folders and globs skip
    it (on a resume, `'clips/**'` would match the job's own parts), a file named in it is refused. Raises
    `CommandError` (one line naming the input and, for manifests, the line).
    """
    _check_window(start, end, "--start/--end")
    inside_out = _inside(out)
    rows, seen, listed = [], {}, set()
    for text in inputs:
        if _is_manifest(text):
            for line, row in read_manifest(text, start, end):
                for column, path in (("video", row.video_path), ("audio", row.audio_path)):
                    if path is not None and inside_out(path):
                        raise CommandError(
                            f"{text} line {line}: `{column}` {path} is inside --out {out}: a job never reads its "
                            "own output folder."
                        )
                if row.id in seen:
                    first = seen[row.id]
                    raise CommandError(
                        f"{text} line {line}: id {row.id!r} repeats "
                        + (
                            f"line {first[1]}"
                            if first[0] == text
                            else f"{first[0]}" + (f" line {first[1]}" if first[1] else "")
                        )
                        + "; ids must be unique (a row without an `id` has its video and window as id: add an `id` "
                        "column to tell such rows apart)."
                    )
                seen[row.id] = (text, line)
                rows.append(row)
            continue
        if os.path.isfile(text) and inside_out(text):
            raise CommandError(f"{text} is inside --out {out}: a job never reads its own output folder.")
        paths = [path for path in _expand(text) if not inside_out(path)]
        if not paths:
            raise CommandError(f"{text}: all it names is inside --out {out}, the job's own output folder.")
        for path in paths:
            row = _row(path, None, start, end, None)
            real = os.path.realpath(path)
            # a file listed twice (overlapping globs or folders, `./a.mp4` and `a.mp4`, links, a glob's `**` going
            # round a symlink loop until the system stops it) is one clip, under its first name in sorted order
            if row.id not in seen and real not in listed:
                seen[row.id] = (text, None)
                listed.add(real)
                rows.append(row)
    return rows


def read_manifest(path: str, start: float | None = None, end: float | None = None) -> list[tuple[int, ClipRow]]:
    """(line number, clip) of every row of a CSV (with a header) or JSONL manifest; relative paths are relative to the
    manifest's folder."""
    folder = os.path.dirname(os.path.abspath(path))
    records = _csv_records(path) if path.lower().endswith(".csv") else _jsonl_records(path)
    rows = []
    for line, record in records:
        where = f"{path} line {line}"
        unknown = sorted(set(record) - set(MANIFEST_COLUMNS), key=str)
        if unknown:
            raise CommandError(
                f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
                f"{', '.join(MANIFEST_COLUMNS)} (video required)."
            )
        video = _text(record.get("video"), "video", where)
        if video is None:
            raise CommandError(f"{where}: no `video` (a video file, relative to the manifest's folder or absolute).")
        audio = _text(record.get("audio"), "audio", where)
        for column, value in (("video", video), ("audio", audio)):
            if value is not None and value.lower().endswith(MANIFEST_SUFFIXES):  # e.g. a manifest that lists itself
                raise CommandError(
                    f"{where}: `{column}` {value} is a manifest, not a media file; manifests do not nest: give "
                    "several manifests on the command line instead."
                )
        row_start = _seconds(record.get("start"), "start", where)
        row_end = _seconds(record.get("end"), "end", where)
        if row_start is None and row_end is None:  # a row with a window of its own keeps it whole
            row_start, row_end = start, end
        _check_window(row_start, row_end, where)
        clip_id = _text(record.get("id"), "id", where)
        rows.append((line, _row(video, audio, row_start, row_end, clip_id, folder)))
    if not rows:
        raise CommandError(f"{path}: the manifest has no rows.")
    return rows


def _inside(folder: str | None):
    """A test of whether a path lies in `folder` (links resolved), false for everything when `folder` is None."""
    if folder is None:
        return lambda path: False
    root = os.path.realpath(folder)
    # a manifest's rows share a few folders: resolve each folder once, and the file's own name only when it is a
    # link (one lstat); a full realpath per row was half of checking a 50,000-row manifest (benchmarks/bench_manifest)
    real_folder = functools.lru_cache(maxsize=4096)(os.path.realpath)

    def inside(path: str) -> bool:
        if os.path.islink(path):
            real = os.path.realpath(path)
        else:
            head, name = os.path.split(os.path.abspath(path))
            real = os.path.join(real_folder(head), name)
        return real == root or real.startswith(root.rstrip(os.sep) + os.sep)

    return inside


def _row(video, audio, start, end, clip_id, folder: str | None = None) -> ClipRow:
    def resolve(path):
        if path is None or folder is None or os.path.isabs(path):
            return path
        return os.path.join(folder, path)

    if clip_id is None:
        clip_id = video + _time_fragment(start, end)
    return ClipRow(clip_id, video, audio, start, end, resolve(video), resolve(audio))


def _time_fragment(start, end) -> str:
    """The window as a W3C media fragment (`#t=10,20`), or "" without one."""
    if start is None and end is None:
        return ""
    return f"#t={seconds_text(start) if start is not None else ''}" + (
        f",{seconds_text(end)}" if end is not None else ""
    )


def seconds_text(value: float) -> str:
    """A number of seconds as written in ids and messages: `10`, `0.5`."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _unlisted(error: OSError):
    # os.walk would skip a folder it cannot list, and the job would silently lack its clips
    raise CommandError(
        f"{error.filename}: cannot list this folder ({error.strerror}); make it readable, or give the folders, a glob "
        "or a manifest of the clips you mean."
    )


def _listed(name: str) -> bool:
    """Whether a folder listing takes this file: not hidden (`.name`, also Emacs's `.#name` lock and LibreOffice's
    `.~lock.name#`). Incomplete downloads (`.part`, `.crdownload`) and backups (`name~`) do not end in a video
    extension anyway; `~name.mp4` is a video like any other."""
    return not name.startswith(".")


def _expand(text: str) -> list[str]:
    if os.path.isdir(text):
        found = []
        for root, folders, files in os.walk(text, onerror=_unlisted):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            found += [
                os.path.join(root, name)
                for name in sorted(files)
                if _listed(name) and name.lower().endswith(VIDEO_EXTENSIONS)
            ]
        if not found:
            raise CommandError(f"{text}: no video files in this folder ({', '.join(VIDEO_EXTENSIONS[:6])}, ...).")
        return found
    if os.path.exists(text):
        return [text]  # a file named by the user: read (or reported as failed) whatever its name
    if _GLOB_CHARACTERS & set(text):
        matches = sorted(path for path in glob.glob(text, recursive=True) if os.path.isfile(path))
        if not matches:
            raise CommandError(f"{text}: the pattern matches no file.")
        return matches
    # an argument is checked now; a missing file named by a manifest row becomes a row with its error
    raise CommandError(f"{text}: no such file or folder.")


def _csv_records(path: str):
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        header = reader.fieldnames
        if not header:
            raise CommandError(
                f"{path}: the manifest is empty; expected a header line ({', '.join(MANIFEST_COLUMNS)})."
            )
        columns = [name.strip() for name in header]
        if len(set(columns)) != len(columns):
            raise CommandError(f"{path} line 1: a column appears twice in the header {columns}.")
        if "video" not in columns:
            raise CommandError(
                f"{path} line 1: no `video` column in the header {columns}; the columns are "
                f"{', '.join(MANIFEST_COLUMNS)} (video required)."
            )
        for record in reader:
            if None in record:
                raise CommandError(f"{path} line {reader.line_num}: more fields than the header has columns.")
            values = {name.strip(): value for name, value in record.items()}
            if all(value is None or not value.strip() for value in values.values()):
                continue  # a blank line
            yield reader.line_num, {name: value for name, value in values.items() if value is not None}
    except csv.Error as error:
        raise CommandError(f"{path} line {reader.line_num}: not valid CSV ({error}).") from None


def _jsonl_records(path: str):
    for line, text in enumerate(_read_text(path).split("\n"), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(f"{path} line {line}: not valid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise CommandError(f"{path} line {line}: expected a JSON object per line, got {type(record).__name__}.")
        yield line, record


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise CommandError(f"{path}: cannot read the manifest ({error.strerror}).") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CommandError(f"{path} line {line}: not UTF-8 text.") from None


def _text(value, column: str, where: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CommandError(f"{where}: `{column}` must be text, got {json.dumps(value)}.")
    return str(value).strip()


def _seconds(value, column: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        number = math.nan
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
    if not (math.isfinite(number) and 0 <= number <= MAX_SECONDS):
        raise CommandError(
            f"{where}: `{column}` must be a number of seconds from 0 to {MAX_SECONDS:,} (116 days), got "
            f"{json.dumps(value)}."
        )
    return number


def _check_window(start, end, where: str) -> None:
    if start is not None and end is not None and end <= start:
        raise CommandError(f"{where}: `end` ({seconds_text(end)}) must be after `start` ({seconds_text(start)}).")


# -- output -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputPlan:
    folder: str
    format: str  # "parquet" or "jsonl"
    resume: bool  # an earlier job's folder (its identity is checked once the model is known)


def output_suffix(out: str) -> str:
    """The extension of --out that names the results' format (a key of `OUTPUT_FORMATS` for a batch job)."""
    return os.path.splitext(out.rstrip("/\\"))[1].lower()


def check_output(out: str | None, force: bool) -> OutputPlan:
    """What --out names: a new folder, an empty one, or the folder of an earlier tvlt job. Refuses anything else."""
    if not out:
        raise CommandError("a batch job needs --out RESULTS.parquet (or RESULTS.jsonl): the folder of result parts.")
    suffix = output_suffix(out)
    if suffix not in OUTPUT_FORMATS:
        raise CommandError(
            f"--out {out}: expected a path ending in .parquet or .jsonl (the results' format), got "
            f"{suffix or 'no extension'}."
        )
    if os.path.exists(out) and not os.path.isdir(out):
        raise CommandError(
            f"--out {out} is a file; a batch job writes a folder of parts there: choose a path that does not exist."
        )
    resume = False
    if os.path.isdir(out):
        entries = [name for name in os.listdir(out) if not name.startswith(".")]
        if JOB_FILE in entries:
            resume = not force
        elif entries:
            listed = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise CommandError(
                f"--out {out} is a folder that no tvlt batch job made (it holds {listed}); choose a new path."
            )
    else:
        parent = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(parent):
            raise CommandError(f"--out {out}: the folder {parent} does not exist.")
        if not os.access(parent, os.W_OK):
            raise CommandError(f"--out {out}: cannot write in {parent} (permission denied).")
    return OutputPlan(folder=out, format=OUTPUT_FORMATS[suffix], resume=resume)


def check_output_format_support(plan: OutputPlan) -> None:
    """Parquet needs pyarrow: say so before the model is loaded."""
    import importlib.util

    if plan.format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise CommandError(
            f"--out {plan.folder}: writing Parquet needs pyarrow: pip install pyarrow (or 'tvlt[batch]'), or write "
            "JSON Lines with --out RESULTS.jsonl."
        )


# -- the job ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchJob:
    """A checked batch job: its clips, its output folder and this process's place in a multi-process launch."""

    rows: list
    output: "OutputPlan"
    launch: "Launch"


def plan_batch_job(inputs: list[str], args: argparse.Namespace) -> BatchJob:
    """Check everything a batch job can be checked for without torch: the launch environment, --out, the inputs and
    the manifests. Raises `CommandError`; nothing is written."""
    launch = launch_from_environment()
    output = check_output(args.out, args.force)
    check_output_format_support(output)
    rows = list_clips(inputs, args.start, args.end, out=output.folder)
    return BatchJob(rows=rows, output=output, launch=launch)


# -- distributed launch -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """This process's place in a `torchrun` / `accelerate launch` job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def launch_from_environment(environ=os.environ) -> Launch:
    """Read the variables that torchrun and accelerate launch set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR)."""
    if "WORLD_SIZE" not in environ and "RANK" not in environ:
        return Launch()
    values = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        text = environ.get(name, "0" if name == "LOCAL_RANK" else None)
        try:
            values[name] = int(text)
        except (TypeError, ValueError):
            raise CommandError(
                f"the environment variable {name}={text!r} is not a number; run the job with torchrun or accelerate "
                "launch, or unset RANK/WORLD_SIZE."
            ) from None
    if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        raise CommandError(f"RANK={values['RANK']} and WORLD_SIZE={values['WORLD_SIZE']} do not fit together.")
    if values["WORLD_SIZE"] > 1 and not environ.get("MASTER_ADDR"):
        raise CommandError(
            "WORLD_SIZE > 1 but MASTER_ADDR is not set: start the job with torchrun or accelerate launch."
        )
    return Launch(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"])


__all__ = [
    "BATCH_OPTIONS",
    "CLIP_COLUMNS",
    "DTYPES",
    "JOB_FILE",
    "MANIFEST_COLUMNS",
    "OUTPUT_FORMATS",
    "VIDEO_EXTENSIONS",
    "BatchJob",
    "ClipRow",
    "Launch",
    "OutputPlan",
    "add_batch_arguments",
    "check_output",
    "check_output_format_support",
    "launch_from_environment",
    "list_clips",
    "looks_like_batch_input",
    "output_suffix",
    "plan_batch_job",
    "read_manifest",
    "seconds_text",
]
