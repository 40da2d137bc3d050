"""Lineage: artifacts from different runs are never mixed silently."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest

from rating_prediction.runtime.lineage import Lineage, StaleArtifactError
from tests.project import SMALL_RUN_PARAMS, run_project


def make_lineage(tmp_path: Path, run_id: str) -> Lineage:
    names = ("mapping", "train", "model")
    return Lineage(
        manifest_path=tmp_path / "lineage.json",
        filepaths={name: tmp_path / f"{name}.txt" for name in names},
        rebuilt_by={
            "mapping": "processing",
            "train": "processing",
            "model": "training",
        },
        run_id=run_id,
    )


def run_node(lineage: Lineage, node: str, inputs: dict, outputs: dict[str, str]):
    """What the hooks do around one node: fingerprint, run, save each output."""
    for name in inputs:
        if not name.startswith("params:"):
            lineage.check_load(name)
    lineage.start_node(node, list(outputs), inputs)
    lineage.finish_node(node, list(outputs))
    for name, content in outputs.items():
        lineage.filepaths[name].write_text(content)
        lineage.record_saved(name)


def split(tmp_path: Path, top_n: int, run_id: str) -> Lineage:
    """A run of the node that writes the mapping and the train split."""
    lineage = make_lineage(tmp_path, run_id)
    run_node(
        lineage,
        "split",
        {"params:processing": {"top_n": top_n}},
        {"mapping": f"m{top_n}", "train": f"t{top_n}"},
    )
    return lineage


def build_all(tmp_path: Path, top_n: int, run_id: str) -> Lineage:
    lineage = split(tmp_path, top_n, run_id)
    run_node(lineage, "fit", {"train": None}, {"model": f"w{top_n}"})
    return lineage


def test_a_consistent_set_of_artifacts_is_accepted(tmp_path):
    build_all(tmp_path, 50, "run-1")
    later = make_lineage(tmp_path, "run-2")
    for name in ("mapping", "train", "model"):
        later.check_load(name)


def test_a_model_trained_on_older_splits_is_refused(tmp_path):
    build_all(tmp_path, 50, "run-1")
    split(tmp_path, 40, "run-2")

    evaluation = make_lineage(tmp_path, "run-3")
    evaluation.check_load("train")
    with pytest.raises(StaleArtifactError) as error:
        evaluation.check_load("model")
    assert "'model'" in str(error.value)
    assert "kedro run --pipelines training" in str(error.value)
    assert "'split'" in str(error.value)


def test_rerunning_with_the_same_parameters_keeps_artifacts_current(tmp_path):
    build_all(tmp_path, 50, "run-1")
    split(tmp_path, 50, "run-2")
    make_lineage(tmp_path, "run-3").check_load("model")


def test_an_output_whose_save_failed_is_stale_beside_its_new_sibling(tmp_path):
    build_all(tmp_path, 50, "run-1")
    failing = make_lineage(tmp_path, "run-2")
    failing.start_node("split", ["mapping", "train"], {"params:processing": {"n": 40}})
    failing.finish_node("split", ["mapping", "train"])
    failing.filepaths["mapping"].write_text("m40")
    failing.record_saved("mapping")
    # The run dies before `train` is saved.

    later = make_lineage(tmp_path, "run-3")
    later.check_load("mapping")
    with pytest.raises(StaleArtifactError, match="'train'"):
        later.check_load("train")


def test_a_file_changed_by_hand_is_refused(tmp_path):
    build_all(tmp_path, 50, "run-1")
    (tmp_path / "train.txt").write_text("edited by hand, longer than before")
    with pytest.raises(StaleArtifactError, match="changed after the run that wrote it"):
        make_lineage(tmp_path, "run-2").check_load("train")


def test_a_same_size_edit_with_its_modification_time_put_back_is_refused(tmp_path):
    build_all(tmp_path, 50, "run-1")
    weights = tmp_path / "model.txt"
    before = weights.stat()
    weights.write_text("w99")  # as long as "w50"
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert weights.stat().st_size == before.st_size
    assert weights.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(StaleArtifactError, match="content is not the content recorded"):
        make_lineage(tmp_path, "run-2").check_load("model")


def test_a_rerun_that_rewrites_an_input_with_other_content_makes_its_products_stale(
    tmp_path,
):
    """Same parameters, same node fingerprint, other bytes (a fit that does not
    reproduce itself): what was made from the old bytes is stale."""
    build_all(tmp_path, 50, "run-1")
    rerun = make_lineage(tmp_path, "run-2")
    run_node(rerun, "split", {"params:processing": {"top_n": 50}}, {"train": "t50'"})

    later = make_lineage(tmp_path, "run-3")
    later.check_load("train")
    with pytest.raises(StaleArtifactError, match="other content of 'train'"):
        later.check_load("model")


def test_an_artifact_without_a_record_is_refused(tmp_path):
    (tmp_path / "model.txt").write_text("from an older version of the project")
    with pytest.raises(StaleArtifactError, match="no lineage record"):
        make_lineage(tmp_path, "run-1").check_load("model")


def test_a_corrupt_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "lineage.json").write_text("{ not json")
    with pytest.raises(StaleArtifactError, match="lineage.json cannot be read"):
        make_lineage(tmp_path, "run-1")


def last_run_status() -> str:
    runs = mlflow.search_runs(
        search_all_experiments=True, output_format="list", order_by=["start_time DESC"]
    )
    return runs[0].info.status


@pytest.mark.slow
def test_evaluation_and_inference_refuse_models_of_other_splits(project_copy):
    run_project(project_copy, SMALL_RUN_PARAMS)
    metrics = project_copy / "data" / "08_reporting" / "metrics.json"
    before = metrics.read_bytes()

    for change in ({"top_n_movies": 40}, {"split": {"seed": 7}}):
        run_project(
            project_copy,
            {**SMALL_RUN_PARAMS, "processing": change},
            pipeline_names=["data_processing"],
        )
        for pipeline in ("evaluation", "inference"):
            with pytest.raises(StaleArtifactError) as error:
                run_project(project_copy, SMALL_RUN_PARAMS, pipeline_names=[pipeline])
            assert "model_config" in str(error.value)
            assert "kedro run --pipelines training" in str(error.value)
            assert last_run_status() == "FAILED"
    assert metrics.read_bytes() == before
    manifest = json.loads((project_copy / "data" / "lineage.json").read_text())
    assert manifest["datasets"]["train_ratings"]["node"] == "split_ratings_node"
