"""`tvlt convert` never loses data: SRC/DST overlap, foreign files under --force, concurrent runs, killed runs, write
errors. Every refusal is one line from the command line, and leaves SRC and DST as they were."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO_ROOT

from tvlt.cli import main
from tvlt.conversion import ConversionError, convert_checkpoint


LEGACY = FIXTURES / "model_4402" / "square"


def snapshot(folder: Path) -> dict:
    """Every file under `folder` (links not followed) with its bytes: compared before and after a refused run."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else "link")
        for p in folder.rglob("*")
        if p.is_file() or p.is_symlink()
    }


def legacy_copy(folder: Path, architecture: str = "TvltModel") -> Path:
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((LEGACY / architecture / name).read_bytes())
    return folder


def convert_cli(capsys, *arguments) -> tuple[int, str]:
    """Exit code and stderr of `tvlt convert ARGUMENTS`."""
    capsys.readouterr()  # what the test printed before
    code = main(["convert", *map(str, arguments)])
    return code, capsys.readouterr().err.strip()


def assert_one_line_refusal(code: int, err: str, *, match: str, after_progress: bool = False) -> None:
    """Exit code 2 and one error line (after the progress lines of the run when it failed while writing)."""
    assert code == 2
    lines = err.splitlines()
    assert "Traceback" not in err and lines[-1].startswith("tvlt convert: error: "), err
    assert after_progress or len(lines) == 1, err
    assert match in lines[-1], err


# -- SRC and DST never overlap ----------------------------------------------------------------------------------------


@pytest.fixture()
def holder(tmp_path):
    """A folder holding a checkpoint file, a checkpoint folder and the user's notes."""
    folder = tmp_path / "holder"
    legacy_copy(folder / "legacy")
    (folder / "model.ckpt").write_bytes(b"not read: refused before")
    (folder / "notes.txt").write_text("mine")
    return folder


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda h: [h / "model.ckpt", h, "--force"], "is inside DST"),
        (lambda h: [h / "legacy", h, "--force"], "is inside DST"),
        (lambda h: [h / "legacy", h / "legacy", "--force"], "is SRC"),
        (lambda h: [h / "legacy", h / "legacy" / "out"], "is inside SRC"),
        (lambda h: [h / "legacy", h / "legacy" / "deeper" / "out", "--force"], "is inside SRC"),
        (lambda h: [h / "legacy", h.parent / "elsewhere" / ".." / "holder", "--force"], "is inside DST"),
        (lambda h: [h / "legacy" / ".." / "model.ckpt", h, "--force"], "is inside DST"),
        (lambda h: [h / "legacy", h / ".", "--force"], "is inside DST"),
    ],
    ids=[
        "file-in-dst",
        "folder-in-dst",
        "dst-is-src",
        "dst-in-src",
        "dst-deep-in-src",
        "dotdot-dst",
        "dotdot-src",
        "dot",
    ],
)
def test_overlapping_src_and_dst_are_refused_even_with_force(holder, capsys, make_arguments, message):
    before = snapshot(holder.parent)
    code, line = convert_cli(capsys, *make_arguments(holder))
    assert_one_line_refusal(code, line, match=message)
    assert snapshot(holder.parent) == before


def test_overlap_through_symbolic_links_is_refused(holder, tmp_path, capsys):
    (tmp_path / "alias").symlink_to(holder.parent)  # another spelling of tmp_path
    (tmp_path / "to-holder").symlink_to(holder)
    (tmp_path / "ckpt-link").symlink_to(holder / "model.ckpt")
    before = snapshot(holder)
    # DST reached through a linked parent
    code, line = convert_cli(capsys, holder / "model.ckpt", tmp_path / "alias" / "holder", "--force")
    assert_one_line_refusal(code, line, match="is inside DST")
    # SRC given through a link that lives outside DST
    code, line = convert_cli(capsys, tmp_path / "ckpt-link", holder, "--force")
    assert_one_line_refusal(code, line, match="is inside DST")
    # SRC a link inside DST to a file elsewhere: the link is the user's file
    (holder / "outside-link.ckpt").symlink_to(tmp_path / "elsewhere.ckpt")
    (tmp_path / "elsewhere.ckpt").write_bytes(b"x")
    code, line = convert_cli(capsys, holder / "outside-link.ckpt", holder, "--force")
    assert_one_line_refusal(code, line, match="is inside DST")
    # DST itself a link
    code, line = convert_cli(capsys, LEGACY / "TvltModel", tmp_path / "to-holder", "--force")
    assert_one_line_refusal(code, line, match="is a symbolic link")
    assert snapshot(holder) == {**before, "outside-link.ckpt": "link"}


def test_dot_as_dst_in_the_checkpoints_folder_is_a_clear_message(holder, capsys, monkeypatch):
    """`cd dir && tvlt convert ea.pt . --force`: one line, no OSError, nothing touched."""
    monkeypatch.chdir(holder)
    before = snapshot(holder)
    for dst in (".", "./", "", "legacy/.."):
        code, line = convert_cli(capsys, "model.ckpt", dst, "--force")
        assert_one_line_refusal(code, line, match="DST ")
        assert "`.` or `..`" in line or "is inside DST" in line
    assert snapshot(holder) == before


def test_the_current_directory_is_never_dst(tmp_path, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, line = convert_cli(capsys, LEGACY / "TvltModel", work)
    assert_one_line_refusal(code, line, match="is the current directory or holds it")
    code, line = convert_cli(capsys, LEGACY / "TvltModel", tmp_path, "--force")
    assert_one_line_refusal(code, line, match="is the current directory or holds it")
    assert list(work.iterdir()) == []


# -- --force replaces only a previous output --------------------------------------------------------------------------


def test_force_keeps_the_users_files_and_names_them(tmp_path, capsys):
    dst = convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo").destination
    (dst / "my-notes.txt").write_text("mine")
    (dst / ".git").mkdir()
    before = snapshot(dst)
    code, line = convert_cli(capsys, LEGACY / "TvltForPreTraining", dst, "--force")
    assert_one_line_refusal(code, line, match="holds files tvlt convert does not write (.git, my-notes.txt)")
    assert snapshot(dst) == before


def test_force_does_not_replace_a_checkpoint_that_is_not_our_output(tmp_path, capsys):
    """A 4.40.2 folder has only names a conversion writes, but it is the user's checkpoint."""
    legacy = legacy_copy(tmp_path / "legacy-4402")
    (legacy / "README.md").write_text("my model card")
    before = snapshot(legacy)
    code, line = convert_cli(capsys, LEGACY / "TvltForPreTraining", legacy, "--force")
    assert_one_line_refusal(code, line, match="is not empty and not a previous tvlt convert output")
    assert snapshot(legacy) == before


def test_force_replaces_a_previous_output_of_another_checkpoint(tmp_path):
    dst = convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo").destination
    convert_checkpoint(LEGACY / "TvltForAudioVisualClassification", dst, force=True)
    assert json.loads((dst / "config.json").read_text())["architectures"] == ["TvltForAudioVisualClassification"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no staging, set-aside folder or lock left


# -- write errors -----------------------------------------------------------------------------------------------------


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes in read-only folders")
def test_read_only_parent_is_one_line(tmp_path, capsys):
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        code, line = convert_cli(capsys, LEGACY / "TvltModel", parent / "repo")
    finally:
        parent.chmod(0o755)
    assert_one_line_refusal(code, line, match="is not writable")
    assert list(parent.iterdir()) == []


def test_a_parent_that_cannot_be_written_is_one_line(tmp_path, capsys, monkeypatch):
    # as root (containers), permissions do not stop writes: a read-only parent is what os.access reports
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != tmp_path and real_access(path, mode))
    code, line = convert_cli(capsys, LEGACY / "TvltModel", tmp_path / "repo")
    assert_one_line_refusal(code, line, match=f"{tmp_path} is not writable")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), PermissionError(errno.EACCES, "Permission denied"), OSError()],
    ids=["disk-full", "permission", "no-message"],
)
def test_a_write_error_is_one_line_and_leaves_dst_as_it_was(tmp_path, capsys, monkeypatch, error):
    from tvlt.conversion import repo

    dst = convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo").destination
    before = snapshot(dst)

    def failing_copy(folder):
        (Path(folder) / "half-written.py").write_text("x")
        raise error

    monkeypatch.setattr(repo, "copy_code_files", failing_copy)
    code, line = convert_cli(capsys, LEGACY / "TvltForPreTraining", dst, "--force")
    reason = error.strerror or "OSError"  # an error without a message is named by its type
    assert_one_line_refusal(code, line, match=f"failed ({reason}); DST is left as it was", after_progress=True)
    assert snapshot(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


# -- concurrent and killed runs ---------------------------------------------------------------------------------------

# A converter that stops with its staging folder half written (the weights saved, no model card yet) and waits
_PAUSED_CONVERTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tvlt.conversion import repo
    from tvlt.conversion import convert_checkpoint

    src, dst, signal_file, go_file = sys.argv[1:5]
    def paused_card(*args, **kwargs):
        Path(signal_file).write_text("paused")
        while not Path(go_file).exists():
            time.sleep(0.05)
        return "card"
    repo.render_model_card = paused_card
    convert_checkpoint(src, dst)
    """
)


def start_paused_converter(src: Path, dst: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    signal_file, go_file = tmp_path / "paused", tmp_path / "go"
    process = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_CONVERTER, str(src), str(dst), str(signal_file), str(go_file)],
        cwd=REPO_ROOT.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not signal_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the converter did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
    return process, go_file


def test_a_second_converter_fails_at_once_and_a_killed_ones_staging_is_cleaned(tmp_path, capsys):
    parent = tmp_path / "out"
    parent.mkdir()
    (tmp_path / "alias").symlink_to(parent)
    dst = parent / "repo"
    # not ours: named like a staging folder, but without an owner file; and one whose owner process still runs
    decoy = parent / ".repo.partial-0000"
    decoy.mkdir()
    (decoy / "keep.txt").write_text("mine")
    live = parent / ".repo.partial-1111"
    live.mkdir()
    (parent / ".repo.partial-1111.owner").write_text(
        json.dumps({"kind": "partial", "pid": os.getpid(), "host": os.uname().nodename, "started": 0, "dst": str(dst)})
    )

    process, go_file = start_paused_converter(LEGACY / "TvltModel", dst, tmp_path)
    try:
        staging = [p for p in parent.iterdir() if p.is_dir() and p not in (decoy, live)]
        assert len(staging) == 1 and staging[0].name.startswith(".repo.partial-")
        assert (staging[0] / "model.safetensors").is_file()
        # a second converter, by either spelling of DST: refused at once, naming the first
        for spelling in (dst, tmp_path / "alias" / "repo"):
            code, line = convert_cli(capsys, LEGACY / "TvltForPreTraining", spelling)
            assert_one_line_refusal(code, line, match=f"is being written by another tvlt convert (pid {process.pid} ")
        assert not dst.exists()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        go_file.touch()
        if process.poll() is None:
            process.kill()
        process.communicate()

    assert staging[0].is_dir() and not dst.exists()  # kill -9 left the half-written staging folder
    code, _ = convert_cli(capsys, LEGACY / "TvltForPreTraining", dst)
    assert code == 0
    assert json.loads((dst / "config.json").read_text())["architectures"] == ["TvltForPreTraining"]
    assert not staging[0].exists() and not Path(str(staging[0]) + ".owner").exists()
    assert (decoy / "keep.txt").read_text() == "mine" and live.is_dir()
    assert sorted(p.name for p in parent.iterdir()) == [
        ".repo.partial-0000",
        ".repo.partial-1111",
        ".repo.partial-1111.owner",
        "repo",
    ]


def test_a_dst_created_meanwhile_is_never_replaced(tmp_path, monkeypatch):
    """The final move is atomic and does not replace a non-empty folder that appeared during the conversion."""
    from tvlt.conversion import repo

    dst = tmp_path / "repo"
    real_card = repo.render_model_card

    def someone_else_writes_dst(*args, **kwargs):
        dst.mkdir()
        (dst / "theirs.txt").write_text("theirs")
        return real_card(*args, **kwargs)

    monkeypatch.setattr(repo, "render_model_card", someone_else_writes_dst)
    with pytest.raises(ConversionError, match="was created by another process during the conversion"):
        convert_checkpoint(LEGACY / "TvltModel", dst)
    assert snapshot(dst) == {"theirs.txt": b"theirs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
    # with --force too: the new files are not ours
    dst.rename(tmp_path / "theirs")
    with pytest.raises(ConversionError, match="holds files tvlt convert does not write"):
        convert_checkpoint(LEGACY / "TvltModel", dst, force=True)
    assert snapshot(dst) == {"theirs.txt": b"theirs"}


def test_a_lock_file_that_is_a_link_is_never_followed(tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    (tmp_path / ".repo.tvlt-convert.lock").symlink_to(precious)
    code, line = convert_cli(capsys, LEGACY / "TvltModel", tmp_path / "repo")
    assert_one_line_refusal(code, line, match="cannot write in")
    assert precious.read_text() == "mine" and not (tmp_path / "repo").exists()


def test_two_threads_converting_into_one_dst_are_serialised_like_processes(tmp_path, monkeypatch):
    import threading

    from tvlt.conversion import repo

    inside, release = threading.Event(), threading.Event()
    real_card = repo.render_model_card

    def paused_card(*args, **kwargs):
        inside.set()
        release.wait(60)
        return real_card(*args, **kwargs)

    monkeypatch.setattr(repo, "render_model_card", paused_card)
    dst = tmp_path / "repo"
    first = threading.Thread(target=convert_checkpoint, args=(LEGACY / "TvltModel", dst))
    first.start()
    try:
        assert inside.wait(60)
        with pytest.raises(ConversionError, match="is being written by another tvlt convert"):
            convert_checkpoint(LEGACY / "TvltForPreTraining", dst)
    finally:
        release.set()
        first.join(60)
    assert json.loads((dst / "config.json").read_text())["architectures"] == ["TvltModel"]


def test_an_old_output_set_aside_by_a_killed_forced_run_is_put_back(tmp_path, capsys):
    dst = convert_checkpoint(LEGACY / "TvltModel", tmp_path / "repo").destination
    before = snapshot(dst)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(finished.stdout)
    set_aside = tmp_path / ".repo.replaced-abcd"
    dst.rename(set_aside)  # as a --force run killed between its two renames leaves it
    (tmp_path / ".repo.replaced-abcd.owner").write_text(
        json.dumps({"kind": "replaced", "pid": dead_pid, "host": os.uname().nodename, "started": 0, "dst": str(dst)})
    )
    code, line = convert_cli(capsys, LEGACY / "TvltForPreTraining", dst)
    assert_one_line_refusal(code, line, match="exists and is not empty", after_progress=True)
    assert "Restored" in line
    assert snapshot(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


# -- the checks need neither torch nor transformers -------------------------------------------------------------------


def test_path_checks_import_neither_torch_nor_transformers(tmp_path):
    """`tvlt convert` checks its paths before importing the heavy modules; this loads conversion/paths.py alone."""
    probe = textwrap.dedent(
        f"""
        import importlib.abc, sys, types
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "numpy", "safetensors", "huggingface_hub"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        # the packages as namespaces, without running their __init__ (which import transformers)
        for name, path in (("tvlt", {str(REPO_ROOT)!r}), ("tvlt.conversion", {str(REPO_ROOT / "conversion")!r})):
            module = types.ModuleType(name)
            module.__path__ = [path]
            sys.modules[name] = module
        from tvlt.conversion.errors import ConversionError
        from tvlt.conversion.paths import check_paths
        cases = (({str(tmp_path / "missing")!r}, FileNotFoundError), ({str(tmp_path)!r}, ConversionError))
        for src, expected in cases:
            try:
                check_paths(src, {str(tmp_path / "out")!r}, False)
            except expected:
                pass
        check_paths({str(LEGACY / "TvltModel")!r}, {str(tmp_path / "out")!r}, False)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
