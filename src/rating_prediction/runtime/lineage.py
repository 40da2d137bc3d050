"""Lineage between artifacts: what every file output was made from, checked whenever a
later run reads it.

A node's **fingerprint** is a SHA-256 of its name, the parameters it takes and the
fingerprints of its inputs; every output of a node carries the node's fingerprint (so
the id mappings and the splits, written by one node, share one) and its **ancestry**:
the fingerprint of every node upstream of it. The manifest ``data/lineage.json``
records, per file output, its fingerprint, ancestry and file signature (sizes and
modification times), and per node the fingerprint of its last successful run.

An artifact read by a later run is **stale** when any node in its ancestry, or the
node that wrote it, has run since with another fingerprint (new parameters, another
release, new upstream data), or when its file changed after it was recorded (by hand,
or a write the manifest never saw). Reading a stale artifact stops the run before the
node that wanted it, naming the artifact and the pipeline that rebuilds it.

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

MANIFEST_FORMAT_VERSION = 1
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


def file_signature(path: Path) -> list[list[Any]] | None:
    """(relative path, size, modification time in ns) of a file or of every file in a
    folder; ``None`` when absent."""
    if path.is_file():
        stat = path.stat()
        return [[path.name, stat.st_size, stat.st_mtime_ns]]
    if path.is_dir():
        return [
            [str(file.relative_to(path)), file.stat().st_size, file.stat().st_mtime_ns]
            for file in sorted(path.rglob("*"))
            if file.is_file()
        ]
    return None


@dataclass(frozen=True)
class Output:
    """An output made in this run: its node, the node's fingerprint and its ancestry."""

    node: str
    fingerprint: str
    ancestry: dict[str, str]


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
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self._manifest = _read_manifest(self.manifest_path)

    def check_load(self, dataset: str) -> None:
        """Refuses to read ``dataset`` if it is stale; see the module docstring."""
        if dataset in self._outputs or dataset not in self.rebuilt_by:
            return
        if dataset not in self.filepaths:
            return
        path = self.filepaths[dataset]
        record = self._manifest["datasets"].get(dataset)
        if record is None:
            self._refuse(
                dataset,
                "has no lineage record in "
                f"{self.manifest_path}: it was not written by a finished kedro run of "
                "this version of the project",
            )
        if file_signature(path) != record["files"]:
            self._refuse(
                dataset,
                "changed after the run that wrote it (by hand, or by a write that "
                "did not finish)",
            )
        made_by = {record["node"]: record["fingerprint"]}
        for node, recorded in (made_by | record["ancestry"]).items():
            if self._latest(node) not in (None, recorded):
                self._refuse(
                    dataset,
                    f"was made from an older version of what node '{node}' produces: "
                    "that node has run again since, with other inputs or parameters",
                )

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
        input_fingerprints: dict[str, str] = {}
        for name in inputs.keys() - parameters.keys():
            made = self._lineage_of(name)
            if made is None:
                input_fingerprints[name] = EXTERNAL
                continue
            input_fingerprints[name] = made.fingerprint
            ancestry |= made.ancestry | {made.node: made.fingerprint}
        node_fingerprint = fingerprint(node_name, parameters, input_fingerprints)
        for output in outputs:
            self._outputs[output] = Output(node_name, node_fingerprint, ancestry)

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
        """Records a saved file output with its lineage and file signature."""
        path = self.filepaths.get(dataset)
        made = self._outputs.get(dataset)
        if path is None or made is None:
            return
        with self._lock:
            self._manifest["datasets"][dataset] = {
                "node": made.node,
                "fingerprint": made.fingerprint,
                "ancestry": made.ancestry,
                "files": file_signature(path),
                "run": self.run_id,
                "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write()

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
