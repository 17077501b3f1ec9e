"""Upload a model directory to the Hugging Face hub (`vidcls push`).

Everything a user of the model needs goes up (weights, configs, the model card, metrics, an
ONNX export's files); training's resume checkpoint stays local. When the hub cannot be reached
or refuses, the error says which in one line.
"""

from __future__ import annotations

from pathlib import Path

from vidcls.errors import HubError, ModelError

LOCAL_ONLY = ["checkpoints/*", "*.partial"]  # optimizer state for --resume: large and of no use to others
LOGIN_HINT = " (log in with `hf auth login`, or set HF_TOKEN)"


def push_model(model_dir: str | Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Create ``repo_id`` if needed and upload ``model_dir`` to it; returns the repository's URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelError(f"{model_dir} is not a model directory (no config.json); push what `vidcls train` wrote")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=model_dir, ignore_patterns=LOCAL_ONLY,
                          commit_message=f"Upload {model_dir.name} with vidcls")
    except OfflineModeIsEnabled as error:
        raise HubError("the hub is not reachable: HF_HUB_OFFLINE is set; unset it to push") from error
    except LocalTokenNotFoundError as error:
        raise HubError(f"not logged in to the hub{LOGIN_HINT}") from error
    except HfHubHTTPError as error:
        raise HubError(f"the hub refused the upload to {repo_id}: {_first_line(error)}{_login_hint(error)}") from error
    except (HTTPError, ConnectionError) as error:  # connection refused, DNS, timeouts
        raise HubError(f"the hub is not reachable at {api.endpoint}: {_first_line(error)}") from error
    return str(url)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _login_hint(error) -> str:
    status = getattr(getattr(error, "response", None), "status_code", None)
    return LOGIN_HINT if status in (401, 403) else ""
