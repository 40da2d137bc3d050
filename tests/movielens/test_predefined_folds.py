"""ml-100k's own split files (u1..u5, ua, ub): parsing and reading, on releases the
tests write in ml-100k's format (zip and folder)."""

from __future__ import annotations

import zipfile

import polars as pl
import pytest

from rating_prediction.data.schema import RATINGS_SCHEMA
from rating_prediction.movielens import (
    FOLD_PAIRS_SCHEMA,
    MovieLensError,
    ReleaseSource,
    locate_release,
    parse_u_split,
    read_fold,
    read_fold_pairs,
    read_ratings,
)
from tests.ml100k import write_ml_100k


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_each_fold_reads_with_compact_dtypes_and_partitions_u_data(tmp_path, as_zip):
    write_ml_100k(tmp_path, as_zip=as_zip)
    source = locate_release(tmp_path, "ml-100k")
    everything = read_ratings(source).sort("userId", "movieId")
    for fold in ("u1", "u3", "ua"):
        base, test = read_fold(source, fold)
        assert base.schema == RATINGS_SCHEMA and test.schema == RATINGS_SCHEMA
        both = pl.concat([base, test]).sort("userId", "movieId")
        assert both.equals(everything)
        assert base.join(test, on=["userId", "movieId"], how="semi").is_empty()


def test_the_five_cv_folds_test_every_rating_once(tmp_path):
    source = locate_release(write_ml_100k(tmp_path).parent, "ml-100k")
    pairs = read_fold_pairs(source, ["u1", "u2", "u3", "u4", "u5"])
    assert pairs.schema == FOLD_PAIRS_SCHEMA
    tested = pairs.filter("is_test").group_by("userId", "movieId").len()
    assert tested.height == read_ratings(source).height
    assert (tested["len"] == 1).all()


def test_a_malformed_or_missing_split_file_is_named(tmp_path):
    folder = write_ml_100k(tmp_path)
    (folder / "u2.test").write_bytes(b"1\t2\tfive\t3\n")
    (folder / "u3.base").unlink()
    source = ReleaseSource("ml-100k", folder)
    with pytest.raises(
        MovieLensError, match=r"ml-100k/u2\.test: 1 row\(s\) hold values that cannot"
    ) as error:
        read_fold(source, "u2")
    assert "- rating: 1 value(s) are non-numeric" in str(error.value)
    with pytest.raises(MovieLensError, match=r"holds no u3\.base"):
        read_fold(source, "u3")
    with pytest.raises(MovieLensError, match="has no predefined fold 'u9'"):
        read_fold(source, "u9")


def test_a_zip_without_the_split_file_is_named(tmp_path):
    archive = write_ml_100k(tmp_path, as_zip=True)
    source = ReleaseSource("ml-100k", archive)
    with pytest.raises(MovieLensError, match="holds no u1.base"):
        read_fold(ReleaseSource("ml-100k", _without(archive, "u1.base")), "u1")
    assert read_fold(source, "u1")[1].height > 0


def test_parse_u_split_names_its_file():
    with pytest.raises(MovieLensError, match=r"ub\.base"):
        parse_u_split(b"1\t2\t3\tx\n", "ub.base")


def _without(archive, member: str):
    stripped = archive.with_name("stripped.zip")
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(stripped, "w") as target:
        for name in source.namelist():
            if not name.endswith(member):
                target.writestr(name, source.read(name))
    return stripped
