"""A Release laid out for an instance: plain files at their paths, wheels unpacked, all checked."""

from __future__ import annotations

import shlex
import sys
import zipfile
from pathlib import Path

import pytest

from conveyor.artifacts.cas import ContentStore
from conveyor.release.model import ReleaseArtifact
from conveyor.targets.base import InstanceId, InstanceSpec, TargetError
from conveyor.targets.local import LocalTarget

from .harness import HEALTH, PLACEMENT, SERVICE, dedent, release_of, wait_until

pytestmark = pytest.mark.timeout(60)

GREETER_MAIN = dedent(
    """
    import os
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import greeter_extra


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(greeter_extra.GREETING.encode())

        def log_message(self, *args):
            pass


    HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)


def build_wheel(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def greeter_wheel(directory: Path) -> Path:
    return build_wheel(
        directory / "greeter-1.0.0-py3-none-any.whl",
        {
            "greeter/__init__.py": "",
            "greeter/__main__.py": GREETER_MAIN,
            "greeter-1.0.0.data/purelib/greeter_extra.py": "GREETING = 'hello from a wheel'\n",
            "greeter-1.0.0.data/scripts/greet": "#!/bin/sh\necho hi\n",
            "greeter-1.0.0.dist-info/METADATA": "Name: greeter\nVersion: 1.0.0\n",
            "greeter-1.0.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
            "greeter-1.0.0.dist-info/RECORD": "",
        },
    )


def artifact(cas: ContentStore, release_path: str, file: Path) -> ReleaseArtifact:
    blob = cas.put_file(file)
    return ReleaseArtifact(release_path, blob.digest, blob.size)


def test_a_wheel_is_unpacked_into_the_site_with_its_purelib_data_and_without_scripts(
    target: LocalTarget, cas: ContentStore, tmp_path: Path
) -> None:
    wheel = greeter_wheel(tmp_path / "dist")
    release = release_of("1.0.0", (artifact(cas, "dist/greeter-1.0.0-py3-none-any.whl", wheel),))

    directory = target.prepare(release, InstanceId("hello.prod.1.1"))

    [site] = directory.python_path
    installed = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    assert installed == [
        "greeter-1.0.0.dist-info/METADATA",
        "greeter-1.0.0.dist-info/RECORD",
        "greeter-1.0.0.dist-info/WHEEL",
        "greeter/__init__.py",
        "greeter/__main__.py",
        "greeter_extra.py",
    ]
    assert list(directory.cwd.iterdir()) == []


def test_an_instance_started_from_a_wheel_imports_its_packages_from_the_site(
    target: LocalTarget, cas: ContentStore, tmp_path: Path
) -> None:
    wheel = greeter_wheel(tmp_path / "dist")
    release = release_of("1.0.0", (artifact(cas, "dist/greeter.whl", wheel),))
    directory = target.prepare(release, InstanceId("hello.prod.1.1"))
    command = f"{shlex.quote(sys.executable)} -m greeter"

    instance = target.start(InstanceSpec(directory, PLACEMENT, "1.0.0", command, HEALTH))

    assert wait_until(lambda: target.health(instance).healthy)


def test_plain_files_are_copied_at_their_paths_in_the_release(
    target: LocalTarget, cas: ContentStore, tmp_path: Path
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.toml").write_text("port = 0\n")
    (tmp_path / "service.py").write_text(SERVICE)
    release = release_of(
        "1.0.0",
        (
            artifact(cas, "conf/app.toml", tmp_path / "conf" / "app.toml"),
            artifact(cas, "service.py", tmp_path / "service.py"),
        ),
    )

    directory = target.prepare(release, InstanceId("hello.prod.1.1"))

    assert (directory.cwd / "conf" / "app.toml").read_text() == "port = 0\n"
    assert (directory.cwd / "service.py").read_text() == SERVICE


def test_preparing_again_returns_the_prepared_directory_untouched(
    target: LocalTarget, cas: ContentStore, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    release = release_of("1.0.0", (artifact(cas, "a.txt", tmp_path / "a.txt"),))
    first = target.prepare(release, InstanceId("hello.prod.1.1"))
    (first.cwd / "a.txt").write_text("changed by the instance")

    again = target.prepare(release, InstanceId("hello.prod.1.1"))

    assert again == first
    assert (again.cwd / "a.txt").read_text() == "changed by the instance"


def test_an_artifact_missing_from_the_store_fails_the_preparation_naming_the_release(
    target: LocalTarget, target_root: Path
) -> None:
    missing = ReleaseArtifact("service.py", "sha256:" + "0" * 64, 10)

    with pytest.raises(TargetError, match=r"cannot prepare hello 1\.0\.0: artifact sha256:0+"):
        target.prepare(release_of("1.0.0", (missing,)), InstanceId("hello.prod.1.1"))
    assert list((target_root / "hello.prod.1.1").iterdir()) == []


@pytest.mark.parametrize("path", ["../escape.py", "/etc/escape.py"])
def test_an_artifact_path_that_leaves_the_instance_directory_is_refused(
    target: LocalTarget, cas: ContentStore, tmp_path: Path, path: str
) -> None:
    (tmp_path / "x.py").write_text("")
    release = release_of("1.0.0", (artifact(cas, path, tmp_path / "x.py"),))

    with pytest.raises(TargetError, match="leaves the instance's directory"):
        target.prepare(release, InstanceId("hello.prod.1.1"))


def test_a_wheel_member_that_leaves_the_site_is_refused(
    target: LocalTarget, cas: ContentStore, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "evil-1.0-py3-none-any.whl", {"../../evil.py": ""})
    release = release_of("1.0.0", (artifact(cas, "evil-1.0-py3-none-any.whl", wheel),))

    with pytest.raises(TargetError, match="leaves the instance's directory"):
        target.prepare(release, InstanceId("hello.prod.1.1"))
    assert not (target.root / "evil.py").exists()


def test_an_instance_id_that_is_not_a_plain_name_is_refused(
    target: LocalTarget, cas: ContentStore
) -> None:
    with pytest.raises(TargetError, match="is not an instance id"):
        target.prepare(release_of("1.0.0", ()), InstanceId("../elsewhere"))
