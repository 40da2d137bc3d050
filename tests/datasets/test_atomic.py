"""Every file output is complete or absent: a write that fails midway leaves the
previous file intact, no partial file behind, and an error naming the file."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
import pytest
import torch
from kedro.io import DatasetError
from kedro_datasets.json import JSONDataset

from rating_prediction.datasets import AtomicDataset, TorchStateDictDataset


class HalfWritingJSONDataset(JSONDataset):
    """Writes half of its file, then fails as a full disk does."""

    def save(self, data):
        Path(self._filepath).write_text(json.dumps(data)[:5])
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "metrics.json"
    AtomicDataset({"type": "json.JSONDataset", "filepath": str(target)}).save({"a": 1})
    failing = AtomicDataset(
        {"type": f"{__name__}.HalfWritingJSONDataset", "filepath": str(target)}
    )

    with pytest.raises(DatasetError, match="Could not write .*metrics.json") as error:
        failing.save({"a": 2, "b": "a longer document"})

    assert "No space left on device" in str(error.value)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [path.name for path in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize(
    ("dataset", "data"),
    [
        (
            {"type": "polars.EagerPolarsDataset", "file_format": "parquet"},
            pl.DataFrame({"userId": [1, 2]}),
        ),
        (
            {"type": "polars.EagerPolarsDataset", "file_format": "csv"},
            pl.DataFrame({"userId": [1, 2]}),
        ),
        ({"type": "json.JSONDataset"}, {"rmse": 0.9}),
        ({"type": "text.TextDataset"}, "# Summary\n"),
    ],
)
def test_wrapped_datasets_round_trip(tmp_path, dataset, data):
    wrapped = AtomicDataset({**dataset, "filepath": str(tmp_path / "out" / "file")})
    wrapped.save(data)
    loaded = wrapped.load()
    if isinstance(data, pl.DataFrame):
        assert loaded.equals(data)
    else:
        assert loaded == data
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["file"]


def test_a_figure_is_written_whole(tmp_path):
    figure, axes = plt.subplots()
    axes.plot([1, 2], [3, 4])
    target = tmp_path / "plot.png"
    AtomicDataset(
        {"type": "matplotlib.MatplotlibDataset", "filepath": str(target)}
    ).save(figure)
    plt.close(figure)
    assert target.read_bytes().startswith(b"\x89PNG")


def test_an_interrupted_save_removes_its_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "weights.pt"
    dataset = TorchStateDictDataset(str(target))
    dataset.save({"w": torch.ones(3)})

    def interrupted_save(obj, path):
        Path(path).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        dataset.save({"w": torch.zeros(3)})

    assert torch.equal(dataset.load()["w"], torch.ones(3))
    assert [path.name for path in tmp_path.iterdir()] == ["weights.pt"]


def test_a_torch_write_error_names_the_file_not_the_iostream(tmp_path, monkeypatch):
    target = tmp_path / "weights.pt"

    def failing_save(obj, path):
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(
        DatasetError, match=r"Could not write .*weights\.pt.*Free space"
    ):
        TorchStateDictDataset(str(target)).save({"w": torch.ones(3)})
    assert not list(tmp_path.iterdir())


def test_a_dataset_without_a_filepath_is_refused():
    with pytest.raises(DatasetError, match="has neither"):
        AtomicDataset({"type": "MemoryDataset"})


def test_a_folder_of_partitions_is_replaced_whole_or_not_at_all(tmp_path):
    target = tmp_path / "answers"
    folder = AtomicDataset(
        {
            "type": "partitions.PartitionedDataset",
            "path": str(target),
            "filename_suffix": ".parquet",
            "overwrite": True,
            "dataset": {"type": "polars.EagerPolarsDataset", "file_format": "parquet"},
        }
    )
    folder.save({f"batch-{i}": pl.DataFrame({"userId": [i]}) for i in range(3)})

    def failing_batch() -> pl.DataFrame:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DatasetError, match="Could not write .*answers"):
        folder.save(
            {"batch-0": lambda: pl.DataFrame({"userId": [9]}), "batch-1": failing_batch}
        )

    assert sorted(path.name for path in target.iterdir()) == [
        f"batch-{i}.parquet" for i in range(3)
    ]
    assert [path.name for path in tmp_path.iterdir()] == ["answers"]
    folder.save({})
    assert not list(target.iterdir())
