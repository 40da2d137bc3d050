"""The verified way to load and serve a registered model: every file of the model is
checked against the SHA-256 manifest in its registry version's tags before anything of
it runs.

``mlflow.pyfunc.load_model`` runs the model's logged code (``pyfunc_model.py``, MLflow's
models from code) as it loads, and whatever ``MLmodel`` names: whoever can write the
artifact store can run code on the serving host. Registration
(:func:`~rating_prediction.serving.registry.log_and_register`) downloads the model it
has just logged, hashes every file (``MLmodel``, the code, the environment files, the
served model folder with its ``manifest.json``) and stores the manifest in the version's
tags (:func:`manifest_tags`). :func:`load_verified_model` and :func:`serve_verified`
download the version into a private folder, refuse it unless its files are exactly those
listed, each with its digest, and only then load or serve it, from that folder.

What this guards is the artifact store: the manifest is as trustworthy as the registry
that holds it (whoever can change a version's tags can change what it vouches for).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.utils.validation import MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH

from rating_prediction.runtime.lineage import content_signature

from .pyfunc import artifact_progress_on_a_terminal

# The server verify-and-serve runs (uvicorn's --factory), and where it finds the
# verified copy of the model.
ASGI_FACTORY = "rating_prediction.serving.asgi:create_app"
MODEL_PATH_VARIABLE = "RATING_PREDICTION_SERVED_MODEL_PATH"
MANIFEST_TAG = "integrity.manifest"
MANIFEST_DIGEST_TAG = "integrity.sha256"
ALGORITHM = "sha256"
# Written by MLflow's downloader into every models:/ download (the registered name and
# version it was asked for), not stored with the model: outside the manifest.
DOWNLOADER_FILES = frozenset({"registered_model_meta"})
MODEL_URI = re.compile(
    r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))"
)


class IntegrityError(ValueError):
    """A model whose files are not those its registry version vouches for."""


def model_digests(model_dir: str | Path) -> dict[str, str]:
    """The SHA-256 of every file of a downloaded model, by path relative to it (the
    lineage's content signature of the folder, less the downloader's own files)."""
    return {
        relative: digest
        for relative, _, digest in content_signature(Path(model_dir)) or []
        if relative not in DOWNLOADER_FILES
    }


def _manifest_digest(manifest: str) -> str:
    """The SHA-256 of the manifest tag's JSON text, which the digest tag holds."""
    return hashlib.sha256(manifest.encode()).hexdigest()


def manifest_tags(digests: dict[str, str]) -> dict[str, str]:
    """The version tags that vouch for a model's files: the manifest (compact JSON,
    ``{"algorithm": "sha256", "files": {path: digest}}``, about 100 characters a
    file) and its own SHA-256.

    Raises:
        ValueError: If the manifest is longer than MLflow allows a registry tag value
            (100,000 characters: about 1,000 files; a served model has at most 20).
    """
    manifest = json.dumps(
        {"algorithm": ALGORITHM, "files": digests},
        sort_keys=True,
        separators=(",", ":"),
    )
    if len(manifest) > MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH:
        raise ValueError(
            f"The model's manifest ({len(digests)} files) is longer than a registry "
            f"tag may be ({MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH} characters)."
        )
    return {MANIFEST_TAG: manifest, MANIFEST_DIGEST_TAG: _manifest_digest(manifest)}


def _vouched_digests(tags: dict[str, str], version: str) -> dict[str, str]:
    """The digests the version's tags vouch for, the tags checked against each other."""
    manifest = tags.get(MANIFEST_TAG)
    if manifest is None:
        raise IntegrityError(
            f"{version} has no integrity manifest (tag {MANIFEST_TAG!r}): it was "
            "registered before models carried one, or by hand. Register the model "
            "again with `kedro run --pipelines inference`."
        )
    if _manifest_digest(manifest) != tags.get(MANIFEST_DIGEST_TAG):
        raise IntegrityError(
            f"{version}'s tag {MANIFEST_TAG!r} does not match its digest "
            f"({MANIFEST_DIGEST_TAG!r}): the tags were changed after registration."
        )
    return json.loads(manifest)["files"]


def check_model(model_dir: str | Path, tags: dict[str, str], version: str) -> None:
    """Refuses ``model_dir`` unless its files are exactly those the manifest in
    ``tags`` lists, each with its digest. Reads the files; runs nothing.

    Raises:
        IntegrityError: Naming every file missing, added or changed.
    """
    expected = _vouched_digests(tags, version)
    found = model_digests(model_dir)
    problems = [
        *(f"{path} is missing" for path in sorted(expected.keys() - found.keys())),
        *(f"{path} was added" for path in sorted(found.keys() - expected.keys())),
        *(
            f"{path} was changed (SHA-256 {found[path][:12]}..., registered "
            f"{expected[path][:12]}...)"
            for path in sorted(expected.keys() & found.keys())
            if found[path] != expected[path]
        ),
    ]
    if problems:
        raise IntegrityError(
            f"{version} in {model_dir} is not the model that was registered: "
            f"{'; '.join(problems)}. Nothing of it was loaded or run."
        )


def _resolve(model_uri: str) -> Any:
    """The registry version ``model_uri`` (``models:/<name>@<alias>`` or
    ``models:/<name>/<version>``) names, resolved once: the files downloaded and the
    tags checked are that version's, even if the alias moves meanwhile."""
    match = MODEL_URI.fullmatch(model_uri)
    if match is None:
        raise IntegrityError(
            f"{model_uri!r} is not a registered model version: the verified loader "
            "takes models:/<name>@<alias> or models:/<name>/<version> (a run's "
            "model has no registry tags to check it against)."
        )
    client = mlflow.MlflowClient()
    if match["alias"]:
        return client.get_model_version_by_alias(match["name"], match["alias"])
    return client.get_model_version(match["name"], match["version"])


def download_verified(model_uri: str, dst_path: str | Path) -> Path:
    """Downloads the registered version ``model_uri`` names into ``dst_path`` (a folder
    only this user can write, so the files checked are the files later run) and
    checks it (:func:`check_model`). Returns the model's local folder."""
    version = _resolve(model_uri)
    label = f"Version {version.version} of {version.name}"
    with artifact_progress_on_a_terminal():
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{version.name}/{version.version}",
            dst_path=str(dst_path),
        )
    check_model(local, version.tags, label)
    return Path(local)


@contextmanager
def _private_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="verified-model-") as folder:
        yield Path(folder)  # mkdtemp makes it 0700


def load_verified_model(model_uri: str) -> mlflow.pyfunc.PyFuncModel:
    """The registered model ``model_uri`` names, loaded only after every file of it
    matched its version's manifest; the verified copy is removed once loaded (the
    served model is read into memory as it loads).

    Raises:
        IntegrityError: If a file is missing, added or changed (named), the version
            has no manifest, or ``model_uri`` is not a registered version.
    """
    with _private_folder() as folder:
        return mlflow.pyfunc.load_model(str(download_verified(model_uri, folder)))


def serve_verified(model_uri: str, host: str, port: int) -> int:
    """Verifies the registered model ``model_uri`` names, then serves the verified
    copy until it stops: MLflow's scoring server, as ``mlflow models serve
    --env-manager local`` runs it, with its error answers kept short
    (:mod:`rating_prediction.serving.asgi`). Returns the server's exit status."""
    with _private_folder() as folder:
        local = download_verified(model_uri, folder)
        command = [sys.executable, "-m", "uvicorn", "--factory", ASGI_FACTORY]
        command += ["--host", host, "--port", str(port)]
        environment = os.environ | {MODEL_PATH_VARIABLE: str(local)}
        return subprocess.run(command, env=environment, check=False).returncode
