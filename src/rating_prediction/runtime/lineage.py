"""Lineage between artifacts: what every file output was made from, checked whenever a
later run reads it.

A node's **fingerprint** is a SHA-256 of its name, the parameters it takes and the
fingerprints of its inputs; every output of a node carries the node's fingerprint (so
the id mappings and the splits, written by one node, share one) and its **ancestry**:
the fingerprint of every node upstream of it; and its **sources**: the content digest
of every file output upstream of it, as it was read. The manifest ``data/lineage.json``
records, per file output, its fingerprint, ancestry, sources and content signature (the
SHA-256 of each of its files), and per node the fingerprint of its last successful run.

An artifact read by a later run is **stale** when any node in its ancestry, or the
node that wrote it, has run since with another fingerprint (new parameters, another
release, new upstream data); when a file it was made from has been written again since
with other content (a rerun with the same parameters that did not reproduce its output
byte for byte, such as a fit on a GPU); or when its own content changed after it was
recorded (by hand, or a write the manifest never saw). Files are compared by content, not
by size and modification time: a same-size edit with its modification time put back is
still a change. Reading a stale artifact stops the run before the node that wanted it,
naming the artifact and the pipeline that rebuilds it.

The hooks that drive this are :class:`rating_prediction.hooks.LineageHooks`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rating_prediction.runtime.atomic import atomic_destination

# 2: files by content (SHA-256) instead of size and modification time, and sources. A
# version-1 manifest is read as empty: its records cannot say what content they saw.
MANIFEST_FORMAT_VERSION = 2
# hashlib.file_digest reads in chunks of its own (256 KiB): SHA-256 with the CPU's SHA
# instructions runs at 1.4-1.5 GB/s, as fast as with 8 MiB chunks (docs/failures.md).
DIGEST = "sha256"
# Inputs no node writes (a user's request file): their content is theirs to manage.
EXTERNAL = "external"


class StaleArtifactError(RuntimeError):
    """An artifact was made from other versions of its inputs than those on disk."""


def fingerprint(
    node_name: str, parameters: dict[str, Any], inputs: dict[str, str]
) -> str:
    """The SHA-256 of a node's name, parameter values and input fingerprints."""
    content = json.dumps(
        {"node": node_name, "parameters": parameters, "inputs": inputs},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(content.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's content, hex."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, DIGEST).hexdigest()


def content_signature(path: Path) -> list[list[Any]] | None:
    """(relative path, size, SHA-256) of a file or of every file in a folder; ``None``
    when absent. The content decides, so a same-size edit whose modification time was
    put back is still seen."""
    if path.is_file():
        return [[path.name, path.stat().st_size, file_digest(path)]]
    if path.is_dir():
        return [
            [file.relative_to(path).as_posix(), file.stat().st_size, file_digest(file)]
            for file in sorted(path.rglob("*"))
            if file.is_file()
        ]
    return None


def _digest(files: list[list[Any]] | None) -> str:
    """One digest for a dataset's content signature: what its sources record."""
    return hashlib.sha256(json.dumps(files).encode()).hexdigest()


@dataclass(frozen=True)
class Output:
    """An output made in this run: its node, the node's fingerprint, its ancestry and
    its sources (the content digest of each file output upstream of it)."""

    node: str
    fingerprint: str
    ancestry: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Lineage:
    """The lineage state of one ``kedro run``.

    ``filepaths``: the local path of every file dataset of the catalog;
    ``rebuilt_by``: for every dataset some node writes, the pipeline to rerun for it.
    """

    manifest_path: Path
    filepaths: dict[str, Path]
    rebuilt_by: dict[str, str]
    run_id: str
    _manifest: dict[str, Any] = field(init=False)
    _outputs: dict[str, Output] = field(default_factory=dict, init=False)
    # The datasets found current in this run: each is hashed once per run, however
    # many nodes read it.
    _checked: set[str] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._manifest = _read_manifest(self.manifest_path)

    def check_load(self, dataset: str) -> None:
        """Refuses to read ``dataset`` if it is stale; see the module docstring."""
        if dataset in self._outputs or dataset in self._checked:
            return
        if dataset not in self.rebuilt_by or dataset not in self.filepaths:
            return
        record = self._manifest["datasets"].get(dataset)
        if record is None:
            self._refuse(
                dataset,
                "has no lineage record in "
                f"{self.manifest_path}: it was not written by a finished kedro run of "
                "this version of the project",
            )
        if content_signature(self.filepaths[dataset]) != record["files"]:
            self._refuse(
                dataset,
                "changed after the run that wrote it (by hand, or by a write that "
                "did not finish): its content is not the content recorded",
            )
        made_by = {record["node"]: record["fingerprint"]}
        for node, recorded in (made_by | record["ancestry"]).items():
            if self._latest(node) not in (None, recorded):
                self._refuse(
                    dataset,
                    f"was made from an older version of what node '{node}' produces: "
                    "that node has run again since, with other inputs or parameters",
                )
        for source, digest in record["sources"].items():
            if self._current_digest(source) not in (None, digest):
                self._refuse(
                    dataset,
                    f"was made from other content of '{source}' than it holds now: "
                    f"'{source}' was written again since (a rerun that did not "
                    "reproduce it byte for byte)",
                )
        self._checked.add(dataset)

    def start_node(
        self, node_name: str, outputs: list[str], inputs: dict[str, Any]
    ) -> None:
        """Fingerprints the node from ``inputs`` (its parameter values and the datasets
        it read) and gives its outputs their lineage."""
        parameters = {
            name: value
            for name, value in inputs.items()
            if name.startswith("params:") or name == "parameters"
        }
        ancestry: dict[str, str] = {}
        sources: dict[str, str] = {}
        input_fingerprints: dict[str, str] = {}
        for name in inputs.keys() - parameters.keys():
            sources |= self._sources_of(name)
            made = self._lineage_of(name)
            if made is None:
                input_fingerprints[name] = EXTERNAL
                continue
            input_fingerprints[name] = made.fingerprint
            ancestry |= made.ancestry | {made.node: made.fingerprint}
        node_fingerprint = fingerprint(node_name, parameters, input_fingerprints)
        for output in outputs:
            self._outputs[output] = Output(
                node_name, node_fingerprint, ancestry, sources
            )

    def finish_node(self, node_name: str, outputs: list[str]) -> None:
        """Records the node's fingerprint as its latest, before its outputs are saved:
        any of them that then fails to save is stale."""
        if not outputs:
            return
        made = self._outputs[outputs[0]]
        with self._lock:
            self._manifest["nodes"][node_name] = {
                "fingerprint": made.fingerprint,
                "run": self.run_id,
            }
            self._write()

    def record_saved(self, dataset: str) -> None:
        """Records a saved file output with its lineage, sources and content
        signature."""
        path = self.filepaths.get(dataset)
        made = self._outputs.get(dataset)
        if path is None or made is None:
            return
        files = content_signature(path)  # hashed outside the lock: it takes a while
        with self._lock:
            self._manifest["datasets"][dataset] = {
                "node": made.node,
                "fingerprint": made.fingerprint,
                "ancestry": made.ancestry,
                "sources": made.sources,
                "files": files,
                "run": self.run_id,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write()

    def _sources_of(self, dataset: str) -> dict[str, str]:
        """What reading ``dataset`` adds to a node's sources: a recorded file output's
        own content digest and its sources; an output kept in memory, its sources."""
        digest = self._current_digest(dataset) if dataset in self.filepaths else None
        if digest is not None:
            return self._manifest["datasets"][dataset]["sources"] | {dataset: digest}
        made = self._outputs.get(dataset)
        return {} if made is None else made.sources

    def _current_digest(self, dataset: str) -> str | None:
        """The content digest of ``dataset``'s latest record; ``None`` without one."""
        record = self._manifest["datasets"].get(dataset)
        return None if record is None else _digest(record["files"])

    def _lineage_of(self, dataset: str) -> Output | None:
        """An input's lineage: made in this run, or recorded; ``None`` for inputs no
        node writes."""
        if dataset in self._outputs:
            return self._outputs[dataset]
        record = self._manifest["datasets"].get(dataset)
        if record is None:
            return None
        return Output(record["node"], record["fingerprint"], record["ancestry"])

    def _latest(self, node: str) -> str | None:
        latest = self._manifest["nodes"].get(node)
        return None if latest is None else latest["fingerprint"]

    def _refuse(self, dataset: str, reason: str) -> None:
        pipeline = self.rebuilt_by[dataset]
        raise StaleArtifactError(
            f"Stale artifact: '{dataset}' ({self.filepaths[dataset]}) {reason}. "
            "Nothing was computed from it. Rebuild it with `kedro run --pipelines "
            f"{pipeline}` and the pipelines after it, or run everything with "
            "`kedro run`."
        )

    def _write(self) -> None:
        with atomic_destination(self.manifest_path) as partial:
            partial.write_text(json.dumps(self._manifest, indent=1, sort_keys=True))


def _read_manifest(path: Path) -> dict[str, Any]:
    empty = {"format_version": MANIFEST_FORMAT_VERSION, "nodes": {}, "datasets": {}}
    if not path.exists():
        return empty
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StaleArtifactError(
            f"The lineage manifest {path} cannot be read ({error}). Delete it and "
            "rerun everything with `kedro run`."
        ) from None
    if manifest.get("format_version") != MANIFEST_FORMAT_VERSION:
        return empty
    return manifest
