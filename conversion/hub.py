"""Publishing a converted repo folder on the Hugging Face Hub."""

import importlib
import logging
from pathlib import Path

from .errors import ConversionError, first_line


logger = logging.getLogger(__name__)


def default_commit_message(source: str) -> str:
    return f"Upload TVLT converted from {source} with tvlt convert"


def push_repo(
    folder,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> str:
    """
    Create the model repo `repo_id` if needed and upload every file of `folder` to it in one commit; return the
    commit's URL. The token is huggingface_hub's usual one (`HF_TOKEN` or `hf auth login`) unless `token` is given.

    `private=True` creates the repo private (else the Hub's default visibility); an existing repo keeps its visibility.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    folder = Path(folder)
    if not folder.is_dir():
        raise ConversionError(f"{folder} is not a folder to upload.")
    api = HfApi(token=token)
    try:
        # without --private, the Hub's default visibility (an organisation may default to private)
        repo_url = api.create_repo(repo_id, repo_type="model", private=True if private else None, exist_ok=True)
        logger.info("Uploading %s to %s", folder, repo_url)
        commit = api.upload_folder(
            repo_id=repo_url.repo_id,
            folder_path=folder,
            repo_type="model",
            commit_message=commit_message or default_commit_message(folder.name),
        )
    # HTTP errors, no connection (OSError, incl. offline mode) or a transport failure of huggingface_hub's client
    except (HfHubHTTPError, OSError, *_transport_errors()) as error:
        raise ConversionError(f"pushing {folder} to the Hub repo {repo_id} failed: {error}") from error
    return commit.commit_url


def read_from_cache_only(repo_id: str, revision: str | None, culprit: str) -> bool:
    """
    Whether a Hub repo must be read from the local cache only: `True` when the Hub cannot be reached (offline mode,
    or no network) but `repo_id` is cached, `False` when the Hub answers. When neither, a `ConversionError` says so
    at once: one request without retries, instead of huggingface_hub's retries (tens of seconds) and a misleading
    "file not found".
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    cached = isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)
    if constants.HF_HUB_OFFLINE:
        reason = "offline mode: HF_HUB_OFFLINE is set"
    else:
        try:
            get_hf_file_metadata(hf_hub_url(repo_id, "config.json", revision=revision), timeout=10)
            return False
        except HfHubHTTPError:  # the Hub answered (no such repo, gated, ...): the download says what
            return False
        except (OSError, *_transport_errors()) as error:
            reason = f"no connection: {type(error).__name__}: {first_line(error)}"
    if cached:
        logger.warning("The Hub cannot be reached (%s); using the cached copy of %s.", reason, repo_id)
        return True
    raise ConversionError(
        f"{culprit}: the Hugging Face Hub cannot be reached ({reason}) and {repo_id} is not in the local cache "
        f"({constants.HF_HUB_CACHE}); connect to the network, or give a local folder."
    )


def _transport_errors() -> tuple[type[Exception], ...]:
    # huggingface_hub talks HTTP through httpx (1.x) or httpx2 (2.x), whose connection errors are not OSErrors
    errors = []
    for module_name in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(module_name).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


__all__ = ["default_commit_message", "push_repo", "read_from_cache_only"]
