"""The releases repository on SQLite and PostgreSQL: recorded once, read back equal."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from conveyor.audit.chain import NewEvent
from conveyor.core.errors import NotFound, StoreError
from conveyor.core.records import RunId
from conveyor.release.model import Commit, NewRelease, Release, ReleaseArtifact
from conveyor.store import events as event_log
from conveyor.store import releases as release_store
from conveyor.store.db import Database, open_database

MakeRun = Callable[..., tuple[RunId, dict[str, int]]]
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
WHEEL = "sha256:" + "11" * 32
IMAGE = "sha256:" + "22" * 32


def _new(run_id: RunId, **changes: object) -> NewRelease:
    release = NewRelease(
        project="shop",
        service="payments-api",
        version="1.2.0",
        commit_sha="9fceb02d0ae598e95dc970b74767f19372d61af8",
        run_id=run_id,
        config_digest="sha256:" + "cc" * 32,
        config='{"service":"payments-api"}',
        artifacts=(
            ReleaseArtifact("dist/app.whl", WHEEL, 48_213),
            ReleaseArtifact("dist/image.tar", IMAGE, 3 << 30),
        ),
        created_at=T0 + 0.5,
        created_by="ada@example.com",
        previous_version="1.1.0",
        repository="https://github.com/acme/shop",
        commits=(
            Commit(
                "a" * 40,
                "Ada Lövelace",
                "ada@example.com",
                "2026-01-01T00:00:00+01:00",
                "feat(api): ünïcode\n\nBREAKING CHANGE: x",
                1,
            ),
            Commit(
                "b" * 40,
                "Grace",
                "grace@example.com",
                "2025-12-31T09:00:00Z",
                "Merge branch 'x'",
                2,
            ),
        ),
    )
    return replace(release, **changes)  # type: ignore[arg-type]


def _event(release: NewRelease) -> NewEvent:
    subject = f"release/{release.service}/{release.version}"
    return NewEvent(
        "release.created",
        subject,
        release.created_by,
        release.created_at,
        {"version": release.version},
    )


def _create(db: Database, release: NewRelease) -> tuple[Release, bool]:
    return release_store.create_release(db, release=release, event=_event(release))


def test_a_created_release_reads_back_equal_with_its_artifacts_commits_and_event(
    db: Database, make_run: MakeRun
) -> None:
    run_id, _ = make_run()
    new = _new(run_id)

    stored, created = _create(db, new)

    assert created
    assert stored.id > 0
    assert NewRelease(**{f: getattr(stored, f) for f in NewRelease.__dataclass_fields__}) == new
    got = release_store.get_release(db, project="shop", service="payments-api", version="1.2.0")
    assert got == stored
    events = list(event_log.iter_all(db))
    assert [(e.kind, e.subject) for e in events] == [
        ("release.created", "release/payments-api/1.2.0")
    ]


def test_recording_a_version_again_returns_the_recorded_one_and_appends_no_event(
    db: Database, make_run: MakeRun
) -> None:
    run_id, _ = make_run()
    first, _ = _create(db, _new(run_id))

    again, created = _create(db, _new(run_id, commit_sha="0" * 40, artifacts=()))

    assert not created
    assert again == first
    assert len(list(event_log.iter_all(db))) == 1
    with db.read() as tx:
        assert int(tx.execute("SELECT count(*) FROM release_artifacts")[0][0]) == 2


def test_releases_are_listed_per_project_and_service_oldest_first(
    db: Database, make_run: MakeRun
) -> None:
    run_id, _ = make_run()
    _create(db, _new(run_id, version="1.0.0"))
    _create(db, _new(run_id, version="0.9.0"))
    _create(db, _new(run_id, version="1.0.0", service="billing"))
    _create(db, _new(run_id, version="5.0.0", project="other"))

    mine = release_store.list_releases(db, project="shop", service="payments-api")
    everything = release_store.list_releases(db, project="shop")

    assert [r.version for r in mine] == ["1.0.0", "0.9.0"]
    assert [(r.service, r.version) for r in everything] == [
        ("payments-api", "1.0.0"),
        ("payments-api", "0.9.0"),
        ("billing", "1.0.0"),
    ]
    assert all(len(r.artifacts) == 2 for r in everything)


def test_an_unknown_version_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match=r"payments-api has no release 9\.9\.9"):
        release_store.get_release(db, project="shop", service="payments-api", version="9.9.9")


def test_released_digests_cover_every_release_of_every_project(
    db: Database, make_run: MakeRun
) -> None:
    run_id, _ = make_run()
    _create(db, _new(run_id, artifacts=(ReleaseArtifact("a", WHEEL, 1),)))
    _create(db, _new(run_id, project="other", artifacts=(ReleaseArtifact("b", IMAGE, 1),)))

    assert release_store.released_digests(db) == {WHEEL, IMAGE}


def test_a_release_of_a_run_that_does_not_exist_is_refused_by_the_store(db: Database) -> None:
    with pytest.raises(StoreError):
        _create(db, _new(RunId(404)))

    assert release_store.list_releases(db, project="shop") == []
    assert list(event_log.iter_all(db)) == []


def test_concurrent_creators_of_one_version_record_it_once(
    db: Database, database_url: str, make_run: MakeRun
) -> None:
    run_id, _ = make_run()
    creators = [open_database(database_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(creators)) as pool:
            results = list(pool.map(lambda d: _create(d, _new(run_id)), creators))
    finally:
        for creator in creators:
            creator.close()

    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({release.id for release, _ in results}) == 1
    assert [e.kind for e in event_log.iter_all(db)] == ["release.created"]


def test_commits_recorded_before_committers_were_kept_read_back_without_one(
    db: Database, make_run: MakeRun
) -> None:
    run_id, _ = make_run()
    release, _ = _create(db, _new(run_id))
    with db.write() as tx:
        tx.execute(
            "UPDATE releases SET commits = :c",
            {
                "c": '[{"sha": "aa", "author": "A", "email": "a@x", "date": "d", "message": "m", '
                '"parents": 1}]'
            },
        )

    [commit] = release_store.get_release(
        db, project="shop", service=release.service, version=release.version
    ).commits

    assert (commit.email, commit.committer_email) == ("a@x", "")
