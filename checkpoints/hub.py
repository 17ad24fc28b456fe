"""Reading checkpoints from the Hugging Face Hub: whether a repo must come from the local cache only, decided once
with one request instead of huggingface_hub's retries."""

import importlib
import logging

from .errors import CheckpointError, first_line


logger = logging.getLogger(__name__)


def read_from_cache_only(repo_id: str, revision: str | None, culprit: str) -> bool:
    """
    Whether a Hub repo must be read from the local cache only: `True` when the Hub cannot be reached (offline mode,
    or no network) but `repo_id` is cached, `False` when the Hub answers. When neither, a `CheckpointError` says so
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
        except (OSError, *transport_errors()) as error:
            reason = f"no connection: {type(error).__name__}: {first_line(error)}"
    if cached:
        logger.warning("The Hub cannot be reached (%s); using the cached copy of %s.", reason, repo_id)
        return True
    raise CheckpointError(
        f"{culprit}: the Hugging Face Hub cannot be reached ({reason}) and {repo_id} is not in the local cache "
        f"({constants.HF_HUB_CACHE}); connect to the network, or give a local folder."
    )


def transport_errors() -> tuple[type[Exception], ...]:
    # huggingface_hub talks HTTP through httpx (1.x) or httpx2 (2.x), whose connection errors are not OSErrors
    errors = []
    for module_name in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(module_name).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


__all__ = ["read_from_cache_only", "transport_errors"]
