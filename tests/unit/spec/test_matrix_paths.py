"""`${axis}` in a matrix job's paths: each expansion's own workdir, inputs, outputs, reports."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.core.errors import SpecError
from conveyor.spec import placeholders
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.pipeline import Pipeline
from conveyor.spec.serialize import from_dict, to_dict


def load(text: str) -> Pipeline:
    return parse_pipeline(textwrap.dedent(text))


def rendered(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load(text)
    return [issue.render() for issue in caught.value.issues]


BUILD = """\
version: 1
jobs:
  build:
    matrix: {os: [linux, darwin], arch: [x64]}
    workdir: "platforms/${os}"
    inputs: ["src/**", "../../common/${arch}.cfg"]
    outputs: ["dist/app-${os}-${arch}", "dist/${os}/*.whl"]
    reports: {junit: "reports/${os}.xml"}
    run: make
"""


def test_each_expansion_has_its_values_in_its_paths() -> None:
    jobs = {job.name: job for job in load(BUILD).jobs}

    linux = jobs["build (os=linux, arch=x64)"]
    assert linux.workdir == "platforms/linux"
    assert linux.inputs == ("src/**", "../../common/x64.cfg")
    assert linux.outputs == ("dist/app-linux-x64", "dist/linux/*.whl")
    assert linux.reports_junit == ("reports/linux.xml",)
    darwin = jobs["build (os=darwin, arch=x64)"]
    assert (darwin.workdir, darwin.outputs[0]) == ("platforms/darwin", "dist/app-darwin-x64")
    assert darwin.env["os"] == "darwin"  # the script sees the same value as $os


def test_filled_paths_survive_the_parse_cache() -> None:
    pipeline = load(BUILD)
    assert from_dict(to_dict(pipeline)) == pipeline


def test_a_workdir_written_as_one_path_is_normalised_after_filling() -> None:
    spec = (
        "version: 1\njobs:\n  t:\n    matrix: {d: [a, b/c]}\n    workdir: ./x/${d}/\n    run: x\n"
    )
    assert [job.workdir for job in load(spec).jobs] == ["x/a", "x/b/c"]


def test_a_misspelled_axis_suggests_the_right_one() -> None:
    spec = BUILD.replace('"dist/app-${os}-${arch}"', '"dist/app-${oss}-${arch}"')
    assert rendered(spec) == [
        "conveyor.yaml:7:25: '${oss}' names no axis of the matrix of job 'build'\n"
        "  hint: did you mean '${os}'?"
    ]


@pytest.mark.parametrize(
    "written",
    ["${{ matrix.os }}", "${{os}"],  # the second one unclosed, as GitHub would read it
)
def test_github_actions_syntax_is_named_and_translated(written: str) -> None:
    spec = BUILD.replace('"reports/${os}.xml"', f'"reports/{written}.xml"')
    assert rendered(spec) == [
        f"conveyor.yaml:8:31: '{written}' is GitHub Actions' syntax\n  hint: write '${{os}}'"
    ]


def test_an_axis_in_a_job_without_a_matrix_is_refused() -> None:
    spec = "version: 1\njobs:\n  t:\n    run: x\n    outputs: ['out/${os}']\n"
    assert rendered(spec) == [
        "conveyor.yaml:5:20: '${os}' names a matrix axis, and job 't' has no matrix\n"
        "  hint: only a matrix job can name ${axis}; write the value itself"
    ]


def test_an_unclosed_or_empty_placeholder_is_refused_and_every_problem_is_said() -> None:
    spec = BUILD.replace('"src/**"', '"src/${os"').replace('"dist/${os}/*.whl"', '"d/${}"')
    assert rendered(spec) == [
        "conveyor.yaml:6:19: '${os' is not closed\n"
        "  hint: name a matrix axis as ${axis}, closed by '}'",
        "conveyor.yaml:7:44: '${}' names no axis of the matrix of job 'build'\n"
        "  hint: its axes: os, arch; name one like ${os}",
    ]


def test_a_value_that_leads_a_glob_outside_the_workspace_names_its_expansion() -> None:
    spec = """\
    version: 1
    jobs:
      t:
        matrix: {d: [ok, "../.."]}
        outputs: ["out/${d}/x"]
        run: x
    """
    assert rendered(spec) == [
        "conveyor.yaml:5:15: 'out/../../x' leads outside the workspace (in 't (d=../..)')\n"
        "  hint: globs are relative to the job's workdir; name files inside the "
        "directory that holds conveyor.yaml"
    ]


def test_a_value_that_leads_the_workdir_outside_is_said_once() -> None:
    spec = """\
    version: 1
    jobs:
      t:
        matrix: {d: ["../a", "../b"]}
        workdir: "${d}"
        run: x
    """
    assert rendered(spec) == [
        "conveyor.yaml:5:14: workdir '../a' leads outside the workspace through '..' "
        "(in 't (d=../a)')"
    ]


def test_a_value_that_points_outputs_at_conveyors_state_is_refused() -> None:
    spec = "version: 1\njobs:\n  t:\n    matrix: {d: [.conveyor]}\n    outputs: ['${d}/x']\n"
    (issue,) = rendered(spec + "    run: x\n")
    assert issue.startswith(
        "conveyor.yaml:5:15: '.conveyor/x' names Conveyor's own state (.conveyor/) "
        "(in 't (d=.conveyor)')"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("plain/path", []),
        ("a/${x}/b", [(2, 6, "x")]),
        ("${x}${y}", [(0, 4, "x"), (4, 8, "y")]),
        ("${{ matrix.x }}/b", [(0, 15, "{ matrix.x }")]),
        ("a/${x", [(2, -1, "x")]),
        ("$x/{y}", []),  # only `${` opens one
    ],
)
def test_placeholders_are_found_where_written(text: str, found: list[tuple[int, int, str]]) -> None:
    assert [(p.start, p.end, p.name) for p in placeholders.placeholders(text)] == found


def test_fill_replaces_each_axis_and_leaves_the_rest() -> None:
    assert placeholders.fill("d/${os}-${os}/$x", {"os": "linux"}) == "d/linux-linux/$x"
    assert placeholders.fill("no/axes", {}) == "no/axes"


RUNNERS = """\
version: 1
jobs:
  test:
    matrix: {os: [linux, macos], py: ["3.12"]}
    runs_on: ["${os}", docker, "py${py}"]
    run: make test
"""


def test_runs_on_takes_each_expansions_values() -> None:
    jobs = {job.name: job.runs_on for job in load(RUNNERS).jobs}
    assert jobs == {
        "test (os=linux, py=3.12)": ("linux", "docker", "py3.12"),
        "test (os=macos, py=3.12)": ("macos", "docker", "py3.12"),
    }


def test_a_label_named_twice_once_filled_is_kept_once() -> None:
    spec = RUNNERS.replace('["${os}", docker, "py${py}"]', '["${os}", linux]')
    assert [job.runs_on for job in load(spec).jobs] == [("linux",), ("macos", "linux")]


def test_a_value_that_makes_a_bad_label_is_said_with_its_expansion() -> None:
    spec = RUNNERS.replace("[linux, macos]", "[linux, Mac OS]")
    assert rendered(spec) == [
        "conveyor.yaml:5:15: label 'Mac OS' may only use lowercase letters, digits, '.', '_' "
        "and '-', starting with a letter or digit (in 'test (os=Mac OS, py=3.12)')\n"
        "  hint: try 'mac-os'"
    ]


def test_a_misspelled_axis_in_runs_on_suggests_the_right_one() -> None:
    spec = RUNNERS.replace('"${os}"', '"${o}"')
    assert rendered(spec) == [
        "conveyor.yaml:5:16: '${o}' names no axis of the matrix of job 'test'\n"
        "  hint: did you mean '${os}'?"
    ]


def test_a_label_around_its_placeholder_is_checked_as_written() -> None:
    spec = RUNNERS.replace('"py${py}"', '"Py${py}"')
    (issue,) = rendered(spec)
    assert issue.startswith("conveyor.yaml:5:32: label 'Py3.12' may only use lowercase")


def test_a_value_that_makes_a_glob_absolute_or_empty_is_refused() -> None:
    spec = """\
    version: 1
    jobs:
      t:
        matrix: {root: ["/etc", ""]}
        outputs: ["${root}/hostname"]
        inputs: ["${root}"]
        run: x
    """
    assert rendered(spec) == [
        "conveyor.yaml:5:15: glob '/etc/hostname' is absolute; expected a path relative to "
        "the workdir (in 't (root=/etc)')",
        "conveyor.yaml:6:14: glob '/etc' is absolute; expected a path relative to the workdir "
        "(in 't (root=/etc)')",
    ]


def test_a_value_stands_for_itself_in_a_glob() -> None:
    spec = "version: 1\njobs:\n  t:\n    matrix: {v: [linux, '[lm]*']}\n"
    spec += "    outputs: ['dist/app-${v}']\n    run: x\n"
    assert [job.outputs for job in load(spec).jobs] == [
        ("dist/app-linux",),
        ("dist/app-[[]lm][*]",),
    ]


def test_a_broken_matrix_is_said_once_not_again_for_each_placeholder() -> None:
    spec = """\
    version: 1
    jobs:
      t:
        matrix: {os: linux}
        outputs: ["dist/${os}", "../x"]
        runs_on: ["${os}"]
        run: x
    """
    found = rendered(spec)
    assert len(found) == 2, found
    assert found[0].startswith("conveyor.yaml:4:") and "matrix" in found[0]
    assert found[1].startswith("conveyor.yaml:5:29: '../x' leads outside the workspace")


def test_a_filled_label_is_checked_strictly_even_when_a_value_holds_a_placeholder() -> None:
    spec = RUNNERS.replace("[linux, macos]", '[linux, "${HOME}"]')
    (issue,) = rendered(spec)
    assert issue.startswith("conveyor.yaml:5:15: label '${HOME}' may only use lowercase")
    assert issue.endswith("(in 'test (os=${HOME}, py=3.12)')\n  hint: try 'home'")


def test_a_workdir_is_checked_once_filled_not_as_written() -> None:
    spec = "version: 1\njobs:\n  t:\n    matrix: {svc: [apps/api, apps/web]}\n"
    spec += "    workdir: ${svc}/../..\n    run: x\n"
    assert [job.workdir for job in load(spec).jobs] == [".", "."]


def test_an_empty_label_says_so() -> None:
    spec = "version: 1\njobs:\n  t: {run: x, runs_on: ['']}\n"
    assert rendered(spec) == [
        "conveyor.yaml:3:25: a label cannot be empty\n  hint: remove it, or write one like 'linux'"
    ]


def test_expansions_that_name_one_output_file_are_refused_where_it_is_written() -> None:
    spec = """\
    version: 1
    jobs:
      build:
        matrix: {os: [linux, darwin], arch: [x64, arm]}
        workdir: "platforms/${os}"
        outputs: ["../../dist/app-${arch}", "bin/app", "../../all"]
        run: make
    """
    hint = "\n  hint: name the matrix's values in the path, like "
    assert rendered(spec) == [
        "conveyor.yaml:6:15: expansions 'build (os=linux, arch=x64)' and "
        "'build (os=darwin, arch=x64)' of matrix job 'build' both declare output dist/app-x64: "
        "a file has one producer" + hint + "${os}",
        "conveyor.yaml:6:15: expansions 'build (os=linux, arch=arm)' and "
        "'build (os=darwin, arch=arm)' of matrix job 'build' both declare output dist/app-arm: "
        "a file has one producer" + hint + "${os}",
        "conveyor.yaml:6:41: expansions 'build (os=linux, arch=x64)' and "
        "'build (os=linux, arch=arm)' of matrix job 'build' both declare output "
        "platforms/linux/bin/app: a file has one producer" + hint + "${arch}",
        "conveyor.yaml:6:41: expansions 'build (os=darwin, arch=x64)' and "
        "'build (os=darwin, arch=arm)' of matrix job 'build' both declare output "
        "platforms/darwin/bin/app: a file has one producer" + hint + "${arch}",
        # Named by all four, said once.
        "conveyor.yaml:6:52: expansions 'build (os=linux, arch=x64)' and "
        "'build (os=linux, arch=arm)' of matrix job 'build' both declare output all: "
        "a file has one producer" + hint + "${arch}",
    ]


DEPLOY = """\
version: 1
jobs:
  deploy:
    matrix: {region: [eu-west, us-east]}
    concurrency: {group: "deploy-${region}", cancel_in_progress: true}
    run: ./deploy
"""


def test_a_concurrency_group_takes_each_expansions_values() -> None:
    groups = {job.name: job.concurrency for job in load(DEPLOY).jobs}
    assert {name: (c.group, c.cancel_in_progress) for name, c in groups.items() if c} == {
        "deploy (region=eu-west)": ("deploy-eu-west", True),
        "deploy (region=us-east)": ("deploy-us-east", True),
    }


def test_a_group_named_with_an_unknown_axis_or_a_bad_value_is_refused() -> None:
    assert rendered(DEPLOY.replace("${region}", "${regoin}")) == [
        "conveyor.yaml:5:34: '${regoin}' names no axis of the matrix of job 'deploy'\n"
        "  hint: did you mean '${region}'?"
    ]
    (issue,) = rendered(DEPLOY.replace("us-east", "us east"))
    assert issue.startswith(
        "conveyor.yaml:5:26: group 'deploy-us east' may only use letters, digits, '_', '.', "
        "':', '/' and '-' (in 'deploy (region=us east)')"
    )


def test_the_files_own_group_names_no_axis_and_is_said_beside_other_problems() -> None:
    spec = DEPLOY.replace("version: 1\n", "version: 1\nconcurrency: main-${region}\n")
    assert rendered(spec.replace("run: ./deploy", "retyr: 2\n    run: ./deploy")) == [
        "conveyor.yaml:2:19: '${region}' names a matrix axis, and the file, whose concurrency "
        "group is one for every run, has no matrix\n"
        "  hint: only a matrix job can name ${axis}; write the value itself",
        "conveyor.yaml:7:5: unknown key 'retyr' in job 'deploy'\n  hint: did you mean 'retry'?",
    ]
    github = DEPLOY.replace(
        "version: 1\n", "version: 1\nconcurrency: {group: 'd-${{ github.ref }}'}\n"
    )
    (issue,) = rendered(github)
    assert issue.startswith("conveyor.yaml:2:25: '${{ github.ref }}' is GitHub Actions' syntax")


def test_a_value_with_glob_characters_still_names_one_file() -> None:
    spec = """\
    version: 1
    jobs:
      m:
        matrix: {os: [linux, mac], tag: ["v[1]"]}
        outputs: ["dist/${tag}.txt"]
        run: x
    """
    assert rendered(spec) == [
        "conveyor.yaml:5:15: expansions 'm (os=linux, tag=v[1])' and 'm (os=mac, tag=v[1])' of "
        "matrix job 'm' both declare output dist/v[1].txt: a file has one producer\n"
        "  hint: name the matrix's values in the path, like ${os}"
    ]
