"""The content-addressed cache end to end: hits, invalidation, early cutoff, explain, prune."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

from .support import WorkspaceFactory, jobs_by_name

CHAIN = """
version: 1
jobs:
  count:
    inputs: [src/a.txt]
    run: |
      wc -l < src/a.txt | tr -d ' ' > count.txt
      echo "counted the lines"
    outputs: [count.txt]
  summary:
    needs: [count]
    inputs: []
    run: |
      echo "lines: $(cat count.txt)" > summary.txt
      date +%s.%N >> "$SIDE/summary.runs"
    outputs: [summary.txt]
  copy:
    inputs: [src/a.txt]
    env: {GREETING: hello}
    run: |
      cp src/a.txt copy.txt
      echo "$GREETING from copy"
    outputs: [copy.txt]
  shout:
    needs: [copy]
    inputs: []
    run: tr a-z A-Z < copy.txt > shout.txt
    outputs: [shout.txt]
  other:
    inputs: [src/b.txt]
    run: cp src/b.txt other.txt
    outputs: [other.txt]
"""
FILES = {"src/a.txt": "one\ntwo\n", "src/b.txt": "bee\n"}


def _statuses(run: dict[str, object]) -> dict[str, str]:
    return {name: job["status"] for name, job in jobs_by_name(run).items()}


def test_a_rerun_with_nothing_changed_restores_every_job_and_its_deleted_outputs(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CHAIN, files=FILES)
    first = ws.run().json()
    for rel in ("count.txt", "summary.txt", "copy.txt", "shout.txt", "other.txt"):
        (ws.root / rel).unlink()

    result = ws.run()

    assert result.code == 0, result.err
    second = result.json()
    assert second["status"] == "success"
    for job in second["jobs"]:
        assert job["status"] == "cached", job["name"]
        assert job["cached"] is True
    assert ws.read("count.txt") == "2\n"
    assert ws.read("summary.txt") == "lines: 2\n"
    assert ws.read("shout.txt") == "ONE\nTWO\n"
    assert ws.read("other.txt") == "bee\n"
    assert [j["outputs"] for j in second["jobs"]] == [j["outputs"] for j in first["jobs"]]
    assert len(ws.side_floats("summary.runs")) == 1
    # A cached job still has its log: the one of the execution it was restored from.
    log = ws.cli("logs", str(second["id"]), "count")
    assert log.code == 0, log.err
    assert "counted the lines" in log.out


def test_changing_an_input_reruns_exactly_its_readers_and_cuts_off_at_identical_outputs(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CHAIN, files=FILES)
    ws.run()
    ws.write("src/a.txt", "uno\ndos\n")  # same number of lines

    result = ws.run()

    assert result.code == 0, result.err
    assert _statuses(result.json()) == {
        "count": "success",  # reads src/a.txt
        "summary": "cached",  # count's output is byte-identical: early cutoff
        "copy": "success",  # reads src/a.txt
        "shout": "success",  # copy's output changed
        "other": "cached",  # reads only src/b.txt
    }
    assert ws.read("shout.txt") == "UNO\nDOS\n"
    assert len(ws.side_floats("summary.runs")) == 1


def test_explain_names_the_changed_file_and_the_changed_upstream_output(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CHAIN, files=FILES)
    ws.run()
    ws.write("src/a.txt", "one\ntwo\nthree\n")

    result = ws.run("--explain")

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert any("src/a.txt" in reason for reason in jobs["count"]["explain"])
    assert any("src/a.txt" in reason for reason in jobs["copy"]["explain"])
    assert any("count" in r and "count.txt" in r for r in jobs["summary"]["explain"])
    assert any("copy" in r and "copy.txt" in r for r in jobs["shout"]["explain"])
    assert jobs["other"]["status"] == "cached"

    text = ws.cli("explain", "latest", "shout")
    as_json = ws.cli("explain", str(result.json()["id"]), "count", "--json")

    assert text.code == 0, text.err
    assert "copy.txt" in text.out
    assert as_json.code == 0, as_json.err
    doc = as_json.json()
    assert doc["job"] == "count"
    assert doc["compared_to_run"] == 1
    assert doc["reasons"] == ["file src/a.txt changed"]


def test_explain_names_a_changed_environment_variable(workspace: WorkspaceFactory) -> None:
    ws = workspace(CHAIN, files=FILES)
    ws.run()
    ws.spec(CHAIN.replace("GREETING: hello", "GREETING: bonjour"))

    result = ws.run("--explain")

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert jobs["copy"]["status"] == "success"
    assert any("GREETING" in reason for reason in jobs["copy"]["explain"])
    assert not any("src/a.txt" in reason for reason in jobs["copy"]["explain"])
    assert jobs["shout"]["status"] == "cached"  # copy.txt did not change
    assert jobs["count"]["status"] == "cached"
    explained = ws.cli("explain", "latest", "copy", "--json").json()
    assert explained["reasons"] == ["environment variable GREETING changed"]


def test_no_cache_runs_every_job(workspace: WorkspaceFactory) -> None:
    ws = workspace(CHAIN, files=FILES)
    ws.run()

    result = ws.run("--no-cache")

    assert result.code == 0, result.err
    for job in result.json()["jobs"]:
        assert job["status"] == "success", job["name"]
        assert job["cached"] is False
    assert len(ws.side_floats("summary.runs")) == 2


def test_a_job_with_cache_false_runs_every_time(workspace: WorkspaceFactory) -> None:
    spec = CHAIN.replace("    needs: [count]\n", "    needs: [count]\n    cache: false\n")
    ws = workspace(spec, files=FILES)
    ws.run()

    result = ws.run("--explain")

    assert result.code == 0, result.err
    statuses = _statuses(result.json())
    assert statuses.pop("summary") == "success"
    assert set(statuses.values()) == {"cached"}
    assert len(ws.side_floats("summary.runs")) == 2


GIT_SPEC = """
version: 1
jobs:
  build:
    run: |
      cat src/app.txt > out.txt
      date +%s.%N >> "$SIDE/build.runs"
    outputs: [out.txt]
"""


def test_in_git_an_uncommitted_edit_invalidates_and_committing_it_does_not_again(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(GIT_SPEC, files={"src/app.txt": "v1\n", "README.md": "readme\n"})
    ws.init_git()
    assert ws.run().json()["jobs"][0]["status"] == "success"

    ws.write("src/app.txt", "v2\n")
    edited = ws.run("--explain").json()["jobs"][0]
    unchanged = ws.run().json()["jobs"][0]
    ws.commit("v2")
    committed = ws.run().json()["jobs"][0]

    assert edited["status"] == "success"
    assert any("src/app.txt" in reason for reason in edited["explain"])
    assert ws.read("out.txt") == "v2\n"
    assert unchanged["status"] == "cached"
    assert committed["status"] == "cached"
    assert len(ws.side_floats("build.runs")) == 2


def test_in_git_an_untracked_file_is_not_an_input_but_an_edited_tracked_one_is(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(GIT_SPEC, files={"src/app.txt": "v1\n", "README.md": "readme\n"})
    ws.init_git()
    ws.run()

    ws.write("scratch.txt", "not tracked\n")
    with_untracked = ws.run().json()["jobs"][0]
    ws.write("README.md", "edited readme\n")
    with_edit = ws.run("--explain").json()["jobs"][0]

    assert with_untracked["status"] == "cached"
    assert with_edit["status"] == "success"
    assert any("README.md" in reason for reason in with_edit["explain"])


def test_outside_git_every_file_but_the_state_directory_is_an_input(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(GIT_SPEC, files={"src/app.txt": "v1\n"})
    ws.run()

    again = ws.run().json()["jobs"][0]  # .conveyor/ changed in between: not an input
    ws.write("docs/notes.md", "a new file anywhere\n")
    added = ws.run("--explain").json()["jobs"][0]

    assert again["status"] == "cached"
    assert added["status"] == "success"
    assert any("docs/notes.md" in reason for reason in added["explain"])


CORRUPTIBLE = """
version: 1
jobs:
  make:
    inputs: []
    run: |
      head -c 4000 /dev/zero | tr '\\0' p > payload.txt
      date +%s.%N >> "$SIDE/make.runs"
    outputs: [payload.txt]
"""


def test_a_corrupt_blob_is_reported_and_the_job_runs_instead_of_restoring_it(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CORRUPTIBLE)
    first = ws.run().json()["jobs"][0]
    digest = first["outputs"][0]["digest"]
    blob = ws.blob_path(digest)
    assert blob.is_file()
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))
    (ws.root / "payload.txt").unlink()

    result = ws.run()

    assert result.code == 0, result.err
    job = result.json()["jobs"][0]
    assert "corrupt" in result.text.lower()
    assert job["status"] == "success"
    assert job["cached"] is False
    assert len(ws.side_floats("make.runs")) == 2
    payload = (ws.root / "payload.txt").read_bytes()
    assert "sha256:" + hashlib.sha256(payload).hexdigest() == digest
    assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == digest

    after = ws.run()

    assert after.json()["jobs"][0]["status"] == "cached"
    assert "corrupt" not in after.text.lower()


def test_a_corrupt_blob_is_never_handed_out(workspace: WorkspaceFactory) -> None:
    ws = workspace(CORRUPTIBLE)
    digest = ws.run().json()["jobs"][0]["outputs"][0]["digest"]
    blob = ws.blob_path(digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"X" * blob.stat().st_size)

    rerun = ws.run()  # payload.txt in the workspace already holds the right bytes
    fetched = ws.cli("artifacts", "get", digest, "--output", str(ws.side / "fetched.txt"))

    assert rerun.code == 0, rerun.err
    payload = (ws.root / "payload.txt").read_bytes()
    assert "sha256:" + hashlib.sha256(payload).hexdigest() == digest
    assert fetched.code == 3
    assert "corrupt" in fetched.err
    assert not (ws.side / "fetched.txt").exists()


def test_a_garbage_cache_manifest_is_reported_and_the_job_runs_again(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CORRUPTIBLE)
    key = ws.run().json()["jobs"][0]["cache_key"]
    manifest = ws.entry_path(key)
    assert manifest.is_file()
    manifest.write_text("{ this is not a manifest")

    result = ws.run()

    assert result.code == 0, result.err
    assert "corrupt" in result.text.lower()
    job = result.json()["jobs"][0]
    assert job["status"] == "success"
    assert len(ws.side_floats("make.runs")) == 2

    after = ws.run()

    assert after.json()["jobs"][0]["status"] == "cached"


BIG = "version: 1\njobs:\n" + "".join(
    f"""  big{i}:
    inputs: []
    run: |
      echo "block {i}" > big{i}.bin
      head -c 30000 /dev/zero >> big{i}.bin
    outputs: [big{i}.bin]
"""
    for i in range(3)
)


def test_cache_prune_removes_entries_down_to_the_limit_and_reports_sizes(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(BIG)
    ws.run()

    result = ws.cli("cache", "prune", "--max-size", "1KB", "--json")

    assert result.code == 0, result.err
    report = result.json()
    assert report["entries_removed"] == 3
    assert report["max_bytes"] in (1000, 1024)
    assert report["bytes_before"] >= 3 * 30000
    assert report["bytes_after"] <= report["bytes_before"]
    rerun = ws.run().json()
    assert {job["status"] for job in rerun["jobs"]} == {"success"}

    text = ws.cli("cache", "prune", "--max-size", "1KB")

    assert text.code == 0, text.err
    assert "removed 3 entries" in text.out
    assert "bytes" in text.out


def test_cache_prune_deletes_old_unreferenced_content_when_no_runs_are_kept(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(BIG)
    ws.run()
    hours_ago = time.time() - 3 * 3600
    for path in [*ws.state.joinpath("cas").rglob("*"), *ws.state.joinpath("cache").rglob("*")]:
        if path.is_file():
            os.utime(path, (hours_ago, hours_ago))

    result = ws.cli("cache", "prune", "--max-size", "1KB", "--keep-runs", "0", "--json")

    assert result.code == 0, result.err
    report = result.json()
    assert report["blobs_removed"] >= 3
    assert report["bytes_after"] <= 1000
    listed = ws.cli("artifacts", "ls", "latest", "--json").json()["artifacts"]
    assert [a["available"] for a in listed] == [False, False, False]


def test_cache_prune_right_after_a_run_reaches_the_limit_when_no_run_is_in_progress(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(BIG)
    ws.run()

    result = ws.cli("cache", "prune", "--max-size", "1KB", "--keep-runs", "0", "--json")

    assert result.code == 0, result.err
    report = result.json()
    assert report["blobs_removed"] >= 3
    assert report["bytes_after"] <= 1000


def test_cache_prune_with_a_bad_size_exits_2_with_a_clear_message(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(BIG)

    code, out, err = ws.cli("cache", "prune", "--max-size", "abc")

    assert code == 2
    assert out == ""
    assert "--max-size" in err
    assert "'abc' is not a size" in err
    assert "Traceback" not in err


TOOL = """
version: 1
jobs:
  tool:
    inputs: []
    run: |
      mkdir -p bin/nested
      printf '#!/bin/sh\\necho tool ran\\n' > bin/nested/tool
      chmod 755 bin/nested/tool
    outputs: ["bin/**"]
  use:
    needs: [tool]
    inputs: []
    cache: false
    run: bin/nested/tool
"""


def test_a_restored_output_keeps_its_directories_and_executable_bit(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(TOOL)
    assert ws.run().code == 0
    shutil.rmtree(ws.root / "bin")

    result = ws.run()

    assert result.code == 0, result.err
    jobs = jobs_by_name(result.json())
    assert jobs["tool"]["status"] == "cached"
    assert jobs["use"]["status"] == "success"
    assert os.access(ws.root / "bin" / "nested" / "tool", os.X_OK)
    assert "tool ran" in ws.cli("logs", "latest", "use").out


def test_explain_says_when_a_job_was_never_cached_and_when_its_script_changed(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(CORRUPTIBLE)

    first = ws.run("--explain").json()["jobs"][0]
    ws.spec(CORRUPTIBLE.replace("head -c 4000", "head -c 4001"))
    second = ws.run("--explain").json()["jobs"][0]

    assert first["explain"] == ["no earlier cached execution of this job"]
    assert second["status"] == "success"
    assert second["explain"] == ["the job's script (`run`) changed"]


TWINS = """
version: 1
jobs:
  left:
    inputs: []
    run: echo "same bytes" > left.txt
    outputs: [left.txt]
  right:
    inputs: []
    run: echo "same bytes" > right.txt
    outputs: [right.txt]
"""


def test_artifacts_are_stored_once_per_content_read_only_and_fetchable_by_digest(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace(TWINS)

    jobs = jobs_by_name(ws.run().json())
    fetched = ws.side / "fetched.txt"
    digest = jobs["left"]["outputs"][0]["digest"]
    got = ws.cli("artifacts", "get", digest, "--output", str(fetched))

    assert jobs["right"]["outputs"][0]["digest"] == digest
    blob = ws.blob_path(digest)
    assert blob.read_bytes() == b"same bytes\n"
    assert blob.stat().st_mode & 0o222 == 0, "blobs must be read-only"
    holding = [
        p for p in ws.state.joinpath("cas").rglob("*") if p.is_file() and p.name == blob.name
    ]
    assert holding == [blob]
    assert got.code == 0, got.err
    assert fetched.read_bytes() == b"same bytes\n"


def test_quiet_runs_say_nothing_on_success_unless_explain_asks(
    workspace: WorkspaceFactory,
) -> None:
    ws = workspace("version: 1\njobs:\n  count:\n    inputs: [a.txt]\n    run: wc -c a.txt\n")
    ws.write("a.txt", "one\n")
    quiet = ws.cli("run", "-q")
    assert (quiet.code, quiet.out) == (0, "")
    ws.write("a.txt", "two words\n")

    explained = ws.cli("run", "-q", "--explain")

    assert explained.code == 0, explained.err
    assert "file a.txt changed" in explained.out
