"""Runs the code blocks of README.md and docs/*.md, as a reader would, on stand-ins for the files they name.

`tests/test_docs.py` starts it in a child process (so that `HF_HOME` can point at a stand-in Hub cache before
huggingface_hub reads it):

    python docs_runner.py SANDBOX RESULTS_JSON PAGE...

A page's blocks run in order in one folder, `SANDBOX/<page>`, a copy of a template that holds what the docs name:
clips (`clip.mp4`, `face.mp4`, `speech.wav`, `clips/`, `manifest.csv`, ...), checkpoints (`tvlt-base`,
`tvlt-mosei-ea`, `tvlt-mosei-sa`, ...; tiny, random weights, made with `tvlt convert` from the stand-in sources) and
a Hub cache (`HF_HOME`, beside the pages) holding `ZinengTang/tvlt-base` (a 4.40.2 fixture folder). The Python
blocks of a page share one namespace; bash blocks run `tvlt` / `python -m tvlt` / `python SCRIPT` in this process,
one command at a time, each of which must succeed. A block that cannot run offline is preceded by
`<!-- not run: why -->`; a block preceded by `<!-- output of the block above -->` must equal what the block above
printed.
"""

import contextlib
import io
import json
import os
import re
import runpy
import shlex
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "docs").glob("*.md"))]
RUNNABLE = {"python", "bash"}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (\S.*?) -->$")
OUTPUT_MARK = "<!-- output of the block above -->"
# the Hub id the docs use for the released pre-training checkpoint; a 4.40.2 fixture folder stands in for it
HUB_ID = "ZinengTang/tvlt-base"
# the released original checkpoints, and the tiny fixtures of ../shared/fixtures/original-tvlt standing in for them
ORIGINAL_STAND_INS = {
    "TVLT.ckpt": "tiny_orig_tvlt_mae.pt",
    "TVLT-MOSEI-EA.ckpt": "tiny_orig_tvlt_mosei_ea.pt",
    "TVLT-MOSEI-SA.ckpt": "tiny_orig_tvlt_mosei_sa.pt",
}
# what `tvlt convert` cannot read from weights and the stand-ins have other than the released models (12 and 16 heads)
STAND_IN_HEADS = ["--num-attention-heads", "2", "--decoder-num-attention-heads", "2"]


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the reason given, for a block marked as not run
    is_output: bool  # the expected output of the block above

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: str) -> list[Block]:
    """The fenced blocks of a page, with the marker on the line before each (a blank line between is allowed)."""
    lines = (REPO_ROOT / page).read_text(encoding="utf-8").split("\n")
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, language = opening.groups()
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), None)
        if end is None:
            raise ValueError(f"{page}:{index + 1}: a code block is never closed")
        code = "\n".join(line[len(indent) :] if line.startswith(indent) else line for line in lines[index + 1 : end])
        before = next((lines[i].strip() for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marked = NOT_RUN.match(before)
        blocks.append(
            Block(page, index + 1, language, code, marked.group(1) if marked else None, before == OUTPUT_MARK)
        )
        index = end + 1
    return blocks


def bash_commands(code: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped, `a && b` as two commands."""
    commands = []
    for line in code.replace("\\\n", " ").split("\n"):
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:cut])
            words = words[cut + 1 :]
    return [command for command in commands if command]


def tvlt_arguments(command: list[str]) -> list[str] | None:
    """The arguments of a `tvlt ...` or `python -m tvlt ...` command; None for any other command."""
    if command[0] == "tvlt":
        return command[1:]
    if command[:3] == ["python", "-m", "tvlt"]:
        return command[3:]
    return None


def convert_destinations(blocks: list[Block]) -> set[str]:
    """The DSTs of the `tvlt convert` commands a page runs: the page makes them itself."""
    made = set()
    for block in blocks:
        if block.language == "bash" and block.not_run is None:
            for command in bash_commands(block.code):
                arguments = tvlt_arguments(command) or []
                positional = [word for word in arguments[1:] if not word.startswith("-")]
                if arguments[:1] == ["convert"] and len(positional) >= 2:
                    made.add(positional[1])
    return made


def run_command(command: list[str]) -> str:
    """Run one bash command of the docs in this process; returns what it printed on stdout."""
    from tvlt.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        arguments = tvlt_arguments(command)
        if arguments is not None:
            if arguments[:1] == ["convert"] and set(arguments) & set(ORIGINAL_STAND_INS):
                arguments = [*arguments, *STAND_IN_HEADS]
            status = main(arguments)
        elif command[0] == "python" and len(command) > 1 and command[1].endswith(".py"):
            script = Path(command[1]) if Path(command[1]).exists() else REPO_ROOT / command[1]
            saved_argv, sys.argv = sys.argv, [str(script), *command[2:]]
            try:
                runpy.run_path(str(script), run_name="__main__")
                status = 0
            except SystemExit as stopped:
                status = stopped.code or 0
            finally:
                sys.argv = saved_argv
        else:
            raise RuntimeError(f"the docs test runs tvlt and python scripts only, not {command[0]!r}: mark the block")
    if status != 0:
        raise RuntimeError(f"{shlex.join(command)} exited with {status}")
    return printed.getvalue()


def run_page(page: str, folder: Path) -> list[dict]:
    blocks = read_blocks(page)
    results, namespace, last_output = [], {"__name__": "__docs__"}, None
    for block in blocks:
        result = {"where": block.where, "language": block.language}
        if block.is_output:
            expected = block.code.strip("\n")
            got = (last_output or "").strip("\n")
            result["status"] = "ok" if got == expected else "failed"
            if got != expected:
                result["error"] = f"the block above printed:\n{got}\nthe page says:\n{expected}"
        elif block.not_run is not None:
            result.update(status="not run", reason=block.not_run)
        elif block.language not in RUNNABLE:
            result["status"] = "text"
        else:
            try:
                with _inside(folder):
                    if block.language == "python":
                        printed = io.StringIO()
                        with contextlib.redirect_stdout(printed):
                            exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102
                        last_output = printed.getvalue()
                    else:
                        # what its last command printed: the quickstart shows `tvlt predict`'s, not the demo maker's
                        last_output = [run_command(command) for command in bash_commands(block.code)][-1]
                result["status"] = "ok"
            except BaseException as error:  # a failed block is a result, the next pages still run
                result.update(status="failed", error="".join(traceback.format_exception(error))[-4000:])
                last_output = None
        results.append(result)
    return results


@contextlib.contextmanager
def _inside(folder: Path):
    # contextlib.chdir is Python 3.11+; the package supports 3.10
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


# --- the stand-ins the docs name ----------------------------------------------------------------------------------


def _write_wav(path: Path, seconds: float, frequency: float, rate: int = 16000) -> None:
    import soundfile
    from _av_toys import tone

    soundfile.write(path, tone(frequency, seconds, sampling_rate=rate), rate)


def build_template(root: Path, original_fixtures: Path) -> Path:
    from _av_toys import moving_square_frames, tone, toy_dataset, write_clip

    template = root / "template"
    template.mkdir()
    with _inside(template):
        os.symlink(REPO_ROOT / "examples", "examples")  # the demo clip and scripts, as in a checkout
        for name, seconds, seed in [("clip.mp4", 3, 0), ("a.mp4", 2, 1), ("b.mp4", 2, 2), ("c.mp4", 2, 3)]:
            write_clip(
                Path(name), moving_square_frames(8 * seconds, seed=seed), waveform=tone(300 + 100 * seed, seconds)
            )
        write_clip(Path("long.mp4"), moving_square_frames(4 * 60, seed=4), fps=4, waveform=tone(440.0, 60.0, seed=4))
        for name in ("lecture.mp4", "interview.mp4"):
            os.symlink("long.mp4", name)
        write_clip(Path("face.mp4"), moving_square_frames(64, seed=5))  # no audio track, like a CMU-MOSEI video
        for name, frequency in [("speech.wav", 220.0), ("x.wav", 330.0), ("y.wav", 550.0), ("z.wav", 770.0)]:
            _write_wav(Path(name), 8.0, frequency)
        train_csv = toy_dataset(Path("clips"), clips_per_class=2)
        shutil.copy(train_csv, "clips/dev.csv")
        Path("manifest.csv").write_text(
            "video,audio,start,end,id\nclip.mp4,,0,2,first\nface.mp4,speech.wav,,,face\nlong.mp4,,5,8,middle\n"
        )
        # stand-ins for the released checkpoints: the original code's format (tiny) and a 4.40.2 folder on the Hub
        for name, fixture in ORIGINAL_STAND_INS.items():
            os.symlink(original_fixtures / fixture, name)
        snapshot = Path(os.environ["HF_HOME"], "hub", f"models--{HUB_ID.replace('/', '--')}", "snapshots", "0" * 40)
        shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "model_4402" / "square" / "TvltForPreTraining", snapshot)
        # the flat file 4.40.2 saved for that model, as ZinengTang/tvlt-base has one
        shutil.copy(
            REPO_ROOT / "tests" / "fixtures" / "processor_4402" / "square" / "preprocessor_config.json", snapshot
        )
        (snapshot.parents[1] / "refs").mkdir()
        (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
        shutil.copytree(
            REPO_ROOT / "tests" / "fixtures" / "model_4402" / "square" / "TvltForAudioVisualClassification",
            "my-4.40.2-finetune",
        )
        for source, destination in [
            (HUB_ID, "tvlt-base"),
            ("TVLT-MOSEI-EA.ckpt", "tvlt-mosei-ea"),
            ("TVLT-MOSEI-SA.ckpt", "tvlt-mosei-sa"),
            ("my-4.40.2-finetune", "tvlt-finetuned"),
        ]:
            with contextlib.redirect_stderr(io.StringIO()):
                run_command(["tvlt", "convert", source, destination])
    return template


def main(sandbox: str, results_file: str, *pages: str) -> int:
    root = Path(sandbox)
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    template = build_template(root, Path(os.environ["TVLT_ORIGINAL_FIXTURES"]))
    results = {}
    for page in pages:
        folder = root / page.replace("/", "_")
        shutil.copytree(template, folder, symlinks=True)
        for made in convert_destinations(read_blocks(page)):
            shutil.rmtree(folder / made, ignore_errors=True)
        results[page] = run_page(page, folder)
        Path(results_file).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
