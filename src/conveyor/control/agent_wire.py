"""What the agent endpoints carry: a Claim and an AttemptResult as JSON values, both ways.

The server writes a Claim and reads an AttemptResult; an agent does the
opposite. Both sides use these functions, so the two cannot drift apart.
A claim carries the values of the job's secrets (only runner tokens ever
receive one); the agent masks them in the job's log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from conveyor.core.record_json import tests_to_json
from conveyor.core.records import JobState, OutputRecord, RunId
from conveyor.engine.dispatch_rules import AttemptResult, Claim, Source
from conveyor.spec.serialize import job_from_dict, job_to_dict

# The statuses an agent may report for an attempt it ran.
REPORTABLE: tuple[JobState, ...] = ("success", "cached", "failed", "timed_out", "canceled")


def claim_to_json(claim: Claim) -> dict[str, object]:
    return {
        "attempt_id": claim.attempt_id,
        "number": claim.number,
        "run_id": claim.run_id,
        "job_run_id": claim.job_run_id,
        "job": job_to_dict(claim.job),
        "source": claim.source.to_json(),
        "env": dict(claim.env),
        "secrets": dict(claim.secrets),
        "unset_secrets": list(claim.unset_secrets),
        "upstream": [_output_json(o) for o in claim.upstream],
        "lease_until": claim.lease_until,
        "queued_s": claim.queued_s,
    }


def claim_from_json(doc: Mapping[str, object]) -> Claim:
    """The Claim `claim_to_json` wrote; ValueError when `doc` is not one."""
    try:
        source = cast(dict[str, object], doc["source"])
        env = cast(dict[str, str], doc["env"])
        secrets = cast(dict[str, str], doc.get("secrets") or {})
        unset = cast(list[str], doc.get("unset_secrets") or [])
        return Claim(
            attempt_id=_int(doc["attempt_id"]),
            number=_int(doc["number"]),
            run_id=RunId(_int(doc["run_id"])),
            job_run_id=_int(doc["job_run_id"]),
            job=job_from_dict(doc["job"]),
            source=Source.from_json(source),
            env={str(k): str(v) for k, v in env.items()},
            secrets={str(k): str(v) for k, v in secrets.items()},
            unset_secrets=tuple(str(name) for name in unset),
            upstream=tuple(_output(o) for o in cast(list[object], doc["upstream"])),
            lease_until=float(cast(float, doc["lease_until"])),
            queued_s=float(cast(float, doc["queued_s"])),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"the server sent a claim this agent cannot read: {exc}") from None


def result_to_json(result: AttemptResult) -> dict[str, object]:
    tests = result.tests
    return {
        "status": result.status,
        "exit_code": result.exit_code,
        "duration_s": result.duration_s,
        "reason": result.reason,
        "log_digest": result.log_digest,
        "tests": tests_to_json(tests),
        "outputs": [_output_json(o) for o in result.outputs],
    }


def digests_of(result: AttemptResult) -> list[str]:
    """Every blob a result names: its log and its outputs."""
    found = [result.log_digest] if result.log_digest else []
    return found + [o.digest for o in result.outputs]


def _output_json(output: OutputRecord) -> dict[str, object]:
    return {"path": output.path, "digest": output.digest, "size": output.size}


def _output(doc: object) -> OutputRecord:
    values = cast(dict[str, object], doc)
    return OutputRecord(str(values["path"]), str(values["digest"]), _int(values["size"]))


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, found {value!r}")
    return value
