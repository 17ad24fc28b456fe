"""Publishing a converted repo folder on the Hugging Face Hub."""

import logging
from pathlib import Path

from ..checkpoints.hub import transport_errors
from .errors import ConversionError


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
    except (HfHubHTTPError, OSError, *transport_errors()) as error:
        raise ConversionError(f"pushing {folder} to the Hub repo {repo_id} failed: {error}") from error
    return commit.commit_url


__all__ = ["default_commit_message", "push_repo"]
