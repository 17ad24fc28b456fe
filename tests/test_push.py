"""Publishing on the Hub, with huggingface_hub's network calls intercepted (there is no Hub here): `tvlt convert
--push-to-hub` uploads exactly DST, and `push_to_hub` of any TVLT object uploads a complete remote-code repo."""

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from conftest import FIXTURES, tiny_config
from huggingface_hub import RepoUrl
from huggingface_hub.errors import HfHubHTTPError

from tvlt import TvltFeatureExtractor, TvltForAudioVisualClassification, TvltImageProcessor, TvltProcessor
from tvlt.cli import main
from tvlt.conversion import ConversionError, push_repo
from tvlt.remote_code_tvlt import CODE_FILES, CONFIG_AUTO_MAP, PROCESSOR_AUTO_MAP


SRC = FIXTURES / "model_4402" / "square" / "TvltForAudioVisualClassification"


def _http_response(status: int):
    # huggingface_hub 1.x is built on httpx, 2.x on httpx2
    http = importlib.import_module("httpx2" if huggingface_hub.__version__.startswith("2.") else "httpx")
    return http.Response(status, request=http.Request("POST", "https://huggingface.co/api/repos/create"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


class FakeHub:
    """Stands in for the Hub: records create_repo, and what upload_folder/create_commit would have sent."""

    def __init__(self, fail_with: Exception | None = None):
        self.fail_with = fail_with
        self.repos, self.uploads, self.commits = [], [], []

    def create_repo(self, api, repo_id, *args, token=None, private=None, repo_type=None, exist_ok=False, **kwargs):
        if self.fail_with is not None:
            raise self.fail_with
        self.repos.append(dict(repo_id=repo_id, private=private, repo_type=repo_type, exist_ok=exist_ok, extra=kwargs))
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, api, *, repo_id, folder_path, commit_message=None, repo_type=None, **kwargs):
        self.uploads.append(
            dict(
                repo_id=repo_id,
                folder=Path(folder_path),
                files=snapshot(folder_path),
                commit_message=commit_message,
                repo_type=repo_type,
                extra=kwargs,
            )
        )
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/abc123")

    def create_commit(self, api, repo_id, operations, *, commit_message=None, **kwargs):
        files = {}
        for operation in operations:
            source = operation.path_or_fileobj
            files[operation.path_in_repo] = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
        self.commits.append(dict(repo_id=repo_id, files=files, commit_message=commit_message))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/def456")


@pytest.fixture
def hub(monkeypatch):
    fake = FakeHub()
    install(monkeypatch, fake)
    return fake


def install(monkeypatch, fake: FakeHub) -> None:
    for name in ("create_repo", "upload_folder", "create_commit"):
        method = getattr(fake, name)
        monkeypatch.setattr(huggingface_hub.HfApi, name, lambda api, *a, _m=method, **k: _m(api, *a, **k))
        # transformers 5.0 imported the module-level functions by name
        bound = lambda *a, _m=method, **k: _m(None, *a, **k)  # noqa: E731
        import transformers.utils.hub as transformers_hub

        for module in (huggingface_hub, transformers_hub):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, bound)
        for module_name in (
            "transformers.modeling_utils",
            "transformers.configuration_utils",
            "transformers.processing_utils",
        ):
            module = importlib.import_module(module_name)
            if hasattr(module, name):
                monkeypatch.setattr(module, name, bound)


# -- tvlt convert --push-to-hub ---------------------------------------------------------------------------------------


def test_convert_pushes_exactly_dst_to_the_named_private_repo(tmp_path, hub, capsys):
    dst = tmp_path / "repo"
    code = main(
        ["convert", str(SRC), str(dst), "--push-to-hub", "someone/tvlt-av", "--private", "--commit-message", "First"]
    )
    assert code == 0, capsys.readouterr().err
    assert hub.repos == [dict(repo_id="someone/tvlt-av", private=True, repo_type="model", exist_ok=True, extra={})]
    [upload] = hub.uploads
    assert upload["repo_id"] == "someone/tvlt-av" and upload["repo_type"] == "model"
    assert upload["commit_message"] == "First"
    assert upload["folder"] == dst
    # no filters: every file of DST, and nothing else, as it is on disk after the command
    assert upload["extra"] == {}
    assert upload["files"] == snapshot(dst)
    assert {"model.safetensors", "config.json", "README.md", *CODE_FILES} <= set(upload["files"])
    assert 'repo = "someone/tvlt-av"' in upload["files"]["README.md"].decode()
    assert capsys.readouterr().out.split() == [str(dst), "https://huggingface.co/someone/tvlt-av/commit/abc123"]


def test_convert_push_defaults_to_hub_visibility_and_a_message_naming_the_source(tmp_path, hub):
    assert main(["convert", str(SRC), str(tmp_path / "repo"), "--push-to-hub", "someone/tvlt-av"]) == 0
    assert hub.repos[0]["private"] is None
    assert hub.uploads[0]["commit_message"] == f"Upload TVLT converted from {SRC} with tvlt convert"


@pytest.mark.parametrize(
    "error",
    [
        HfHubHTTPError("403 Forbidden: you cannot write to someone/tvlt-av", response=_http_response(403)),
        OSError("Network is unreachable"),
    ],
    ids=["http", "network"],
)
def test_failed_push_is_one_line_and_keeps_the_complete_dst(tmp_path, monkeypatch, capsys, error):
    install(monkeypatch, FakeHub(fail_with=error))
    dst = tmp_path / "repo"
    assert main(["convert", str(SRC), str(dst), "--push-to-hub", "someone/tvlt-av"]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("tvlt convert: error: ")
    assert f"{dst} is written and complete, but pushing" in message and str(error).split(":")[0] in message
    assert {"model.safetensors", "config.json", "README.md", *CODE_FILES} <= set(snapshot(dst))


def test_push_repo_refuses_what_is_not_a_folder(tmp_path, hub):
    with pytest.raises(ConversionError, match="not a folder"):
        push_repo(tmp_path / "missing", "someone/x")
    assert hub.repos == [] and hub.uploads == []


# -- push_to_hub of TVLT objects --------------------------------------------------------------------------------------


def test_model_push_to_hub_uploads_a_complete_remote_code_repo(hub):
    TvltForAudioVisualClassification(tiny_config()).push_to_hub("someone/tvlt-model")
    [commit] = hub.commits
    assert commit["repo_id"] == "someone/tvlt-model"
    assert set(CODE_FILES) <= set(commit["files"]) and "model.safetensors" in commit["files"]
    assert json.loads(commit["files"]["config.json"])["auto_map"] == CONFIG_AUTO_MAP


def test_save_pretrained_with_push_uploads_the_code_files_too(tmp_path, hub):
    # the code files are written inside save_pretrained, before transformers picks the files to upload
    tiny_config().save_pretrained(str(tmp_path / "config"), push_to_hub=True, repo_id="someone/tvlt-config")
    [commit] = hub.commits
    assert set(CODE_FILES) | {"config.json"} <= set(commit["files"])
    assert json.loads(commit["files"]["config.json"])["auto_map"] == CONFIG_AUTO_MAP


def test_processor_push_to_hub_uploads_a_complete_remote_code_repo(hub):
    TvltProcessor(TvltImageProcessor(), TvltFeatureExtractor()).push_to_hub("someone/tvlt-processor")
    [commit] = hub.commits
    assert set(CODE_FILES) <= set(commit["files"])
    assert json.loads(commit["files"]["processor_config.json"])["auto_map"] == PROCESSOR_AUTO_MAP
