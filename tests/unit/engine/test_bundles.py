"""Source bundles: what a checkout's bundle holds, and which members a server refuses."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from conveyor.core.errors import UsageError
from conveyor.engine.bundles import (
    bundle_paths,
    check_bundle,
    extract_bundle,
    read_member,
    write_bundle,
)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _tar(*members: tarfile.TarInfo) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isreg() else None)
    out.seek(0)
    return out


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def test_a_git_bundle_holds_tracked_files_with_their_changes_and_not_untracked_ones(
    tmp_path: Path,
) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "conveyor.yaml").write_text("version: 1\n")
    (tmp_path / "app.py").write_text("v1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "one")
    (tmp_path / "app.py").write_text("v2, not committed\n")
    (tmp_path / "scratch.txt").write_text("untracked\n")

    paths = bundle_paths(tmp_path, tmp_path / ".conveyor", "conveyor.yaml")
    out = io.BytesIO()
    write_bundle(tmp_path, paths, out)
    out.seek(0)

    assert paths == ["app.py", "conveyor.yaml"]
    assert read_member(out, "app.py") == b"v2, not committed\n"


def test_outside_git_a_bundle_holds_every_file_but_the_state_directory(tmp_path: Path) -> None:
    (tmp_path / "conveyor.yaml").write_text("version: 1\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.c").write_text("int main;\n")
    (tmp_path / ".conveyor").mkdir()
    (tmp_path / ".conveyor" / "conveyor.db").write_text("state")

    assert bundle_paths(tmp_path, tmp_path / ".conveyor", "conveyor.yaml") == [
        "conveyor.yaml",
        "src/main.c",
    ]


def test_a_written_bundle_passes_the_check_and_unpacks_with_modes(tmp_path: Path) -> None:
    root = tmp_path / "src"
    root.mkdir()
    (root / "run.sh").write_text("echo hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("run.sh")
    out = io.BytesIO()
    write_bundle(root, ["link", "run.sh"], out)
    out.seek(0)

    listing = check_bundle(out)
    extract_bundle(out, tmp_path / "dest")

    assert listing.files == ("run.sh",) and listing.links == ("link",)
    assert (tmp_path / "dest" / "run.sh").stat().st_mode & 0o111
    assert (tmp_path / "dest" / "link").readlink() == Path("run.sh")


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (_member("../x"), "not a path inside the checkout"),
        (_member("/abs"), "not a path inside the checkout"),
        (_member("a/../../x"), "not a path inside the checkout"),
        (_member("l", tarfile.SYMTYPE, "/etc/passwd"), "leads outside the checkout"),
        (_member("d/l", tarfile.SYMTYPE, "../../up"), "leads outside the checkout"),
        (_member("h", tarfile.LNKTYPE, "conveyor.yaml"), "hard link"),
        (_member("dev", tarfile.CHRTYPE), "device or special file"),
        (_member("fifo", tarfile.FIFOTYPE), "device or special file"),
    ],
)
def test_a_member_that_could_escape_or_is_special_is_refused_by_name(
    member: tarfile.TarInfo, words: str
) -> None:
    with pytest.raises(UsageError, match=words) as raised:
        check_bundle(_tar(_member("conveyor.yaml"), member))

    assert f"'{member.name}'" in str(raised.value)


def test_a_link_that_stays_inside_is_accepted() -> None:
    listing = check_bundle(_tar(_member("a/b"), _member("a/l", tarfile.SYMTYPE, "../a/b")))

    assert listing.links == ("a/l",)


def test_bytes_that_are_no_tar_gz_are_bad_input() -> None:
    with pytest.raises(UsageError, match=r"not a readable \.tar\.gz"):
        check_bundle(io.BytesIO(b"plain text"))
