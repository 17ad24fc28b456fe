"""The output folder of a batch job (`tvlt embed` / batch `tvlt predict`): identity, parts, resuming, locking.

`--out RESULTS.parquet` (or `RESULTS.jsonl`) is a folder, the layout Spark, Dask and `pyarrow.dataset` write and
pandas, `datasets`, DuckDB and Polars read as one table:

    RESULTS.parquet/_tvlt_job.json                   the job's identity (command, model fingerprint, options, columns)
    RESULTS.parquet/part-r00000-<run>-00000.parquet  rows written by rank 0 in run <run> (UTC time + random tag)
    RESULTS.parquet/.lock-r00000                     held (flock) by the process of rank 0 while it runs

Each process writes its own parts: a part is written under a hidden temporary name (`.part-....tmp`) and renamed when
complete, so a killed job leaves whole parts only, and a resumed job appends new parts. Readers skip names starting
with "_" or "." (pyarrow's default), so the folder reads as exactly the result rows.
"""

import datetime
import hashlib
import json
import os
import re
import secrets
import time

from ..checkpoints.layout import PROCESSOR_CONFIG_FILES
from . import CommandError
from ._batch import CLIP_COLUMNS, JOB_FILE, seconds_text


JOB_FORMAT = "tvlt-batch-job/1"
# Files that decide what a local checkpoint computes (its weights, architecture and preprocessing)
_CHECKPOINT_FILES = ("config.json", *PROCESSOR_CONFIG_FILES)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".index.json")
SECONDS_PER_PART = 300
# What a written row holds besides its id that a resumed job reads: its error, and the clip it was made for
WRITTEN_COLUMNS = ("error", *CLIP_COLUMNS)
# The name a part has while it is written (PartWriter.flush): `.part-r<rank>-<run>-<n>.<format>.tmp`
_TEMPORARY_PART = re.compile(r"\.part-r(\d{5})-.+\.tmp")


def model_fingerprint(model: str, revision: str | None, config) -> str:
    """
    What identifies the weights and preprocessing a job runs: for a local folder, the SHA-256 of its config,
    processor config and weight files; for a Hub repo, the repo and the commit its revision resolved to.
    """
    if os.path.isdir(model):
        digest = hashlib.sha256()
        names = sorted(
            name for name in os.listdir(model) if name in _CHECKPOINT_FILES or name.endswith(_WEIGHT_SUFFIXES)
        )
        for name in names:
            digest.update(name.encode() + b"\0")
            with open(os.path.join(model, name), "rb") as handle:
                for block in iter(lambda: handle.read(1 << 24), b""):
                    digest.update(block)
        return "sha256:" + digest.hexdigest()
    commit = getattr(config, "_commit_hash", None)
    return f"{model}@{commit or revision or 'main'}"


def job_identity(command: str, model: str, fingerprint: str, options: dict, columns: dict) -> dict:
    """The identity stored in `_tvlt_job.json` (and in each Parquet part's metadata); no time, no host: every rank
    of a job computes the same one."""
    return {
        "format": JOB_FORMAT,
        "command": command,
        "model": model,
        "model_fingerprint": fingerprint,
        "options": options,
        "columns": columns,
    }


def _differences(stored: dict, current: dict) -> list[str]:
    if stored.get("format") != current["format"]:
        return [f"it was written in format {stored.get('format')!r}, this tvlt writes {current['format']!r}"]
    if stored.get("command") != current["command"]:
        return [f"it holds the results of `tvlt {stored.get('command')}`, this is `tvlt {current['command']}`"]
    reasons = []
    if stored.get("model_fingerprint") != current["model_fingerprint"]:
        reasons.append(
            f"it was made with another model or checkpoint revision ({stored.get('model')!r}, "
            f"{stored.get('model_fingerprint')}; this job: {current['model']!r}, {current['model_fingerprint']})"
        )
    stored_options, options = stored.get("options") or {}, current["options"]
    for name in sorted(set(stored_options) | set(options)):
        if stored_options.get(name) != options.get(name):
            reasons.append(
                f"its --{name.replace('_', '-')} is {stored_options.get(name)!r}, this job's is {options.get(name)!r}"
            )
    if not reasons and stored.get("columns") != current["columns"]:
        reasons.append("its columns differ from this job's")
    return reasons


class OutputFolder:
    """The output folder as one process (one rank) of a job sees it: lock, identity, rows already written, writer."""

    def __init__(self, folder: str, format: str, rank: int, world_size: int = 1):
        self.folder, self.format, self.rank, self.world_size = folder, format, rank, world_size
        self._lock_handle = None

    # -- opening ------------------------------------------------------------------------------------------------------

    def lock(self) -> None:
        """Hold this rank's lock for the job; two jobs writing the same parts at once would duplicate rows. Removes
        the temporary parts that killed processes of this rank left, and (rank 0) those of ranks this job does not
        have: a job resumed with fewer processes than the one that was killed."""
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as error:
            raise CommandError(f"--out {self.folder}: cannot write there ({error.strerror or error}).") from None
        self._lock_handle = self._hold(self.rank)
        self._remove_temporary_parts(self.rank)
        if self.rank != 0:
            return
        for rank in sorted(rank for rank in self._temporary_part_ranks() if rank >= self.world_size):
            handle = self._hold(rank)  # refused while a process of another job holds that rank
            try:
                self._remove_temporary_parts(rank)
            finally:
                handle.close()

    def _hold(self, rank: int):
        """The open, exclusively locked lock file of `rank`; `CommandError` when another process holds it."""
        path = os.path.join(self.folder, f".lock-r{rank:05d}")
        try:
            handle = open(path, "a+")  # noqa: SIM115 - held open until release()
        except OSError as error:
            raise CommandError(f"--out {self.folder}: cannot write there ({error.strerror or error}).") from None
        try:
            import fcntl
        except ImportError:  # no flock on this platform: nothing to hold
            return handle
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise CommandError(
                f"--out {self.folder}: another tvlt job is writing there (rank {rank}); wait for it to finish, "
                "or choose another --out."
            ) from None
        return handle

    def _temporary_part_ranks(self) -> set[int]:
        return {int(match[1]) for match in map(_TEMPORARY_PART.fullmatch, os.listdir(self.folder)) if match}

    def _remove_temporary_parts(self, rank: int) -> None:
        for name in os.listdir(self.folder):  # half-written parts of a killed process of `rank`
            match = _TEMPORARY_PART.fullmatch(name)
            if match and int(match[1]) == rank:
                os.remove(os.path.join(self.folder, name))

    def release(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def part_files(self) -> list[str]:
        suffix = f".{self.format}"
        return sorted(
            os.path.join(self.folder, name)
            for name in os.listdir(self.folder)
            if name.startswith("part-") and name.endswith(suffix)
        )

    def clear(self) -> int:
        """--force: delete the parts and the identity of the earlier job (only tvlt's own files). Returns how many."""
        removed = 0
        for path in self.part_files():
            os.remove(path)
            removed += 1
        job_file = os.path.join(self.folder, JOB_FILE)
        if os.path.exists(job_file):
            os.remove(job_file)
        return removed

    def check_identity(self, identity: dict) -> bool:
        """Refuse to resume into the results of another job. Returns whether the folder's identity is this job's
        (`False`: none yet, or one whose job wrote no part, which is replaced)."""
        path = os.path.join(self.folder, JOB_FILE)
        if not os.path.exists(path):
            return False
        try:
            with open(path, encoding="utf-8") as handle:
                stored = json.load(handle)
        except (OSError, ValueError) as error:
            raise CommandError(f"--out {self.folder}: cannot read its {JOB_FILE} ({error}).") from None
        reasons = _differences(stored if isinstance(stored, dict) else {}, identity)
        if not reasons:
            return True
        if not self.part_files():
            return False  # no results to protect, e.g. a job that stopped while loading its model
        raise CommandError(
            f"--out {self.folder}: refusing to resume into it: {'; '.join(reasons)}. Choose another --out, or add "
            "--force to delete its results and start over."
        )

    def check_or_write_identity(self, identity: dict) -> None:
        """`check_identity`, then write this job's identity if the folder has none (atomically; every rank writes
        the same bytes)."""
        if not self.check_identity(identity):
            data = (json.dumps(identity, indent=1, sort_keys=True) + "\n").encode()
            _write_atomically(os.path.join(self.folder, JOB_FILE), data)

    # -- reading ------------------------------------------------------------------------------------------------------

    def written_rows(self) -> dict[str, dict]:
        """`{id: {"error", "video", "audio", "start", "end"}}` of every row already in the folder (all ranks, all
        earlier runs)."""
        rows = {}
        for path in self.part_files():
            try:
                if self.format == "parquet":
                    import pyarrow.parquet as pq

                    table = pq.read_table(path, columns=["id", *WRITTEN_COLUMNS])
                    for record in table.to_pylist():
                        rows[record.pop("id")] = record
                else:
                    with open(path, encoding="utf-8") as handle:
                        for line in handle:
                            record = json.loads(line)
                            rows[record["id"]] = {name: record.get(name) for name in WRITTEN_COLUMNS}
            except Exception as error:  # noqa: BLE001 - whatever makes a part unreadable, name the part
                raise CommandError(
                    f"--out {self.folder}: cannot read {os.path.basename(path)} ({type(error).__name__}: {error}); "
                    "move it away to resume."
                ) from None
        return rows

    def check_written_rows(self, rows: list, written: dict[str, dict]) -> None:
        """Refuse to resume when a row already written under a clip's id was made for another file or window (a
        manifest's own `id`, kept while its `start`/`end` changed): skipping it would keep the old window's result."""
        for row in rows:
            stored = written.get(row.id)
            if stored is None:
                continue
            changes = [
                f"{name} {_shown(stored[name])} -> {_shown(getattr(row, name))}"
                for name in CLIP_COLUMNS
                if stored[name] != getattr(row, name)
            ]
            if changes:
                raise CommandError(
                    f"--out {self.folder}: refusing to resume into it: id {row.id!r} was written for another clip "
                    f"({', '.join(changes)}). Choose another --out, give the row a new id, or add --force to delete "
                    "its results and start over."
                )

    def writer(self, schema, identity: dict, rows_per_part: int) -> "PartWriter":
        return PartWriter(self, schema, identity, rows_per_part)


class PartWriter:
    """Buffers rows and writes them as whole parts: every `rows_per_part` rows, every 5 minutes, and at `close`."""

    def __init__(self, output: OutputFolder, schema, identity: dict, rows_per_part: int):
        self.output, self.schema, self.rows_per_part = output, schema, rows_per_part
        self.identity_json = json.dumps(identity, sort_keys=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        # two runs in the same second (or a pid reused on another node) must never write the same part name
        self.run_name = f"{stamp}-{secrets.token_hex(4)}"
        self.buffer: list[dict] = []
        self.parts_written = 0
        self.last_flush = time.monotonic()

    def add(self, row: dict) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.rows_per_part or time.monotonic() - self.last_flush >= SECONDS_PER_PART:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.buffer:
            return
        name = f"part-r{self.output.rank:05d}-{self.run_name}-{self.parts_written:05d}.{self.output.format}"
        path = os.path.join(self.output.folder, name)
        if self.output.format == "parquet":
            data = self._parquet_bytes(self.buffer)
        else:
            data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in _json_rows(self.buffer)).encode()
        try:
            _write_atomically(path, data, temporary=os.path.join(self.output.folder, f".{name}.tmp"))
        except OSError as error:  # e.g. a full disk: the parts written so far stay whole; rerunning resumes
            raise CommandError(
                f"--out {self.output.folder}: cannot write {name} ({error.strerror or error}); the {len(self.buffer)} "
                "rows of this part were not saved."
            ) from None
        self.parts_written += 1
        self.buffer = []

    def _parquet_bytes(self, rows: list[dict]) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self.schema.with_metadata({"tvlt_job": self.identity_json})
        columns = [pa.array([row.get(field.name) for row in rows], type=field.type) for field in self.schema]
        table = pa.Table.from_arrays(columns, schema=schema)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes()


def _shown(value) -> str:
    """A clip's field in a message: a path or a number of seconds as the user wrote it, `none` when not given."""
    if value is None:
        return "none"
    return seconds_text(value) if isinstance(value, (int, float)) else str(value)


def _json_rows(rows: list[dict]):
    for row in rows:
        yield {key: value.tolist() if hasattr(value, "tolist") else value for key, value in row.items()}


def _write_atomically(path: str, data: bytes, temporary: str | None = None) -> None:
    """Write `data` under a temporary name, flush it to disk, then rename: readers see the whole file or none."""
    temporary = temporary or os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


__all__ = ["JOB_FORMAT", "OutputFolder", "PartWriter", "job_identity", "model_fingerprint"]
