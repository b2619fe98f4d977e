"""Release notes and changelogs: a Release's commits grouped by kind, as Markdown or JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from conveyor.core.clock import iso
from conveyor.core.values import frozen
from conveyor.release.commits import ParsedMessage, is_merge, parse_message
from conveyor.release.links import Repository, parse_repository
from conveyor.release.model import Commit, Release

# (key, title) in the order sections are shown; breaking changes come first whatever their type.
SECTIONS = (
    ("breaking", "Breaking changes"),
    ("feat", "Features"),
    ("fix", "Fixes"),
    ("perf", "Performance"),
    ("other", "Other"),
)
SHORT = 7


@frozen
class Entry:
    """One change in the notes."""

    sha: str
    type: str | None
    scope: str | None
    description: str
    breaking_note: str | None
    author: str
    email: str
    url: str | None

    @property
    def short(self) -> str:
        """The abbreviated sha shown in the notes."""
        return self.sha[:SHORT]


@frozen
class Section:
    """The changes of one kind."""

    key: str
    title: str
    entries: tuple[Entry, ...]


@frozen
class ReleaseNotes:
    """What changed in one Release since the one before it, and who changed it."""

    service: str
    version: str
    previous_version: str | None
    date: str
    commit: str | None
    run_id: int
    compare_url: str | None
    commit_url: str | None
    sections: tuple[Section, ...]
    authors: tuple[str, ...]


def section_of(message: ParsedMessage) -> str:
    """The key of the section a change is listed under."""
    if message.breaking:
        return "breaking"
    return message.type if message.type in ("feat", "fix", "perf") else "other"


def build_notes(release: Release, *, previous_commit: str | None = None) -> ReleaseNotes:
    """The notes of `release` from the commits recorded with it.

    `previous_commit` is the source commit of the Release before it, which
    the comparison link starts from.
    """
    repo = parse_repository(release.repository)
    grouped: dict[str, list[Entry]] = {key: [] for key, _title in SECTIONS}
    authors: dict[str, str] = {}
    for commit in release.commits:
        if is_merge(commit):
            continue
        message = parse_message(commit.message)
        grouped[section_of(message)].append(_entry(commit, message, repo))
        for name, email in _people(commit, message):
            authors.setdefault(email.lower() or name, name)
    head = release.commit_sha
    compare = None
    if repo and head and previous_commit and previous_commit != head:
        compare = repo.compare_url(previous_commit, head)
    return ReleaseNotes(
        service=release.service,
        version=release.version,
        previous_version=release.previous_version,
        date=(iso(release.created_at) or "")[:10],
        commit=head,
        run_id=int(release.run_id),
        compare_url=compare,
        commit_url=repo.commit_url(head) if repo and head else None,
        sections=tuple(
            Section(key, title, tuple(grouped[key])) for key, title in SECTIONS if grouped[key]
        ),
        authors=tuple(sorted(set(authors.values()), key=str.casefold)),
    )


def _entry(commit: Commit, message: ParsedMessage, repo: Repository | None) -> Entry:
    return Entry(
        sha=commit.sha,
        type=message.type,
        scope=message.scope,
        description=message.description,
        breaking_note=message.breaking_note,
        author=commit.author,
        email=commit.email,
        url=repo.commit_url(commit.sha) if repo else None,
    )


def _people(commit: Commit, message: ParsedMessage) -> Iterable[tuple[str, str]]:
    """The author, and co-authors named in `Co-authored-by: Name <email>` footers."""
    yield commit.author, commit.email
    for footer in message.footers:
        if footer.token.lower() == "co-authored-by":
            name, _, email = footer.value.partition("<")
            yield name.strip() or email.rstrip(">"), email.rstrip(">").strip()


# --- Markdown ----------------------------------------------------------------------


def to_markdown(notes: ReleaseNotes, *, level: int = 2) -> str:
    """The notes as Markdown, headed at `level` (`##` by default)."""
    head = "#" * level
    lines = [f"{head} {notes.service} {notes.version} ({notes.date})", ""]
    facts = []
    if notes.previous_version:
        since = f"Changes since {notes.previous_version}"
        facts.append(f"[{since}]({notes.compare_url})" if notes.compare_url else since)
    else:
        facts.append("First release")
    if notes.commit:
        short = notes.commit[:SHORT]
        facts.append(f"commit [{short}]({notes.commit_url})" if notes.commit_url else short)
    facts.append(f"run {notes.run_id}")
    lines += [" · ".join(facts), ""]
    if not notes.sections:
        lines += ["No changes recorded.", ""]
    for section in notes.sections:
        lines += [f"{head}# {section.title}", ""]
        lines += [_markdown_entry(entry, section.key) for entry in section.entries]
        lines.append("")
    if notes.authors:
        lines += [f"{head}# Authors", "", ", ".join(notes.authors), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_entry(entry: Entry, section: str) -> str:
    label = ""
    if section in ("other", "breaking") and entry.type:
        label = entry.type + (f"({entry.scope})" if entry.scope else "") + ": "
    elif entry.scope:
        label = f"**{entry.scope}:** "
    sha = f"[{entry.short}]({entry.url})" if entry.url else entry.short
    line = f"- {label}{entry.description} ({sha}) by {entry.author}"
    if entry.breaking_note and entry.breaking_note != entry.description:
        line += "\n" + "\n".join(f"  {text}" for text in entry.breaking_note.splitlines())
    return line


def changelog_markdown(service: str, notes: Sequence[ReleaseNotes]) -> str:
    """A changelog: the notes of every Release given, newest first."""
    parts = [f"# Changelog of {service}\n"]
    parts += [to_markdown(item) for item in notes]
    return "\n".join(parts)


# --- JSON --------------------------------------------------------------------------


def to_json(notes: ReleaseNotes) -> dict[str, object]:
    """The notes as JSON values."""
    return {
        "service": notes.service,
        "version": notes.version,
        "previous_version": notes.previous_version,
        "date": notes.date,
        "commit": notes.commit,
        "run": notes.run_id,
        "compare_url": notes.compare_url,
        "sections": [
            {
                "key": section.key,
                "title": section.title,
                "changes": [_entry_json(entry) for entry in section.entries],
            }
            for section in notes.sections
        ],
        "authors": list(notes.authors),
    }


def _entry_json(entry: Entry) -> dict[str, object]:
    return {
        "sha": entry.sha,
        "short_sha": entry.short,
        "type": entry.type,
        "scope": entry.scope,
        "description": entry.description,
        "breaking": entry.breaking_note,
        "author": entry.author,
        "email": entry.email,
        "url": entry.url,
    }
