"""Which files a job's output globs name, as recorded: paths from the workspace root."""

from __future__ import annotations

from pathlib import Path

from conveyor.engine.outputs import expand


def test_a_glob_climbing_out_of_the_workdir_records_the_plain_path(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app").write_text("x")

    found = expand(tmp_path, "svc", ["../dist/app", "../dist/*"])

    # One file, named as every other job would name it: a file has one producer,
    # compared by its path.
    assert found.files == ["dist/app"]
    assert (found.missing, found.outside) == ([], [])


def test_a_climb_through_a_symlink_keeps_the_path_that_leads_there(tmp_path: Path) -> None:
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "real" / "out").write_text("through the link")
    (tmp_path / "out").write_text("at the root")
    (tmp_path / "link").symlink_to(tmp_path / "real" / "deep")

    found = expand(tmp_path, ".", ["link/../out"])

    # `link/..` is `real`, not the workspace root: dropping the steps would name another file.
    assert found.files == ["link/../out"]
