"""The delivery half of the remote control plane: releases, promotions, waivers, status.

Against a server, its workspace's `delivery:` section decides, so the
pipeline the CLI read locally is not sent. Who acts is the token's owner.
The server's reconcile loop re-evaluates promotions and carries out their
Deployments, so waiting here is polling: `reevaluate` reads the promotion
again, `await_deployment` reads it until its Deployment settled. An evidence
bundle is built by the server and downloaded under a temporary name, renamed
into place only when complete, so `evidence verify` checks it offline.
"""

from __future__ import annotations

import json
import secrets
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar
from urllib.parse import quote

import httpx

from conveyor.audit.evidence import MANIFEST
from conveyor.control import delivery_wire as wire
from conveyor.core.errors import StoreError, UsageError
from conveyor.engine.deployments import Progress
from conveyor.engine.environments import EnvironmentView
from conveyor.engine.evidence import EvidenceExport
from conveyor.engine.releases import ReleaseOutcome
from conveyor.engine.waivers import WaiverStatus
from conveyor.policy.waiver import WaiverState
from conveyor.promotion.model import Promotion
from conveyor.release.change_record import ChangeRecord
from conveyor.release.model import Release
from conveyor.release.notes import ReleaseNotes
from conveyor.rollout.deployment import Deployment

if TYPE_CHECKING:
    from conveyor.control.base import PipelineSource

POLL_S = 1.0
Params = Mapping[str, str | int]
_T = TypeVar("_T")


class DeliveryCalls:
    """Delivery methods of the remote control plane over its HTTP helpers."""

    base_url: str

    def _json(self, path: str, params: Params | None = None) -> dict[str, object]:
        raise NotImplementedError

    def _post_json(self, path: str, body: Mapping[str, object]) -> dict[str, object]:
        raise NotImplementedError

    def _request(
        self, method: str, path: str, params: Params | None = None
    ) -> AbstractContextManager[httpx.Response]:
        raise NotImplementedError

    # --- releases ----------------------------------------------------------------

    def create_release(
        self, pipeline: PipelineSource, run_ref: str | None, *, version: str | None = None
    ) -> ReleaseOutcome:
        body: dict[str, object] = {"run": run_ref or "latest", "version": version}
        return self._read(wire.outcome_from_json, self._post_json("/api/v1/releases", body))

    def list_releases(self, *, service: str | None = None) -> list[Release]:
        page = self._json("/api/v1/releases", _params(service=service))
        return self._many(wire.release_from_json, page, "releases")

    def get_release(self, version: str, *, service: str | None = None) -> Release:
        path = _release(self._service(service), version)
        return self._read(wire.release_from_json, self._json(path))

    def release_notes(self, version: str, *, service: str | None = None) -> ReleaseNotes:
        path = f"{_release(self._service(service), version)}/notes"
        return self._read(wire.notes_from_json, self._json(path))

    def changelog(self, version: str, *, service: str | None = None) -> list[ReleaseNotes]:
        path = f"{_release(self._service(service), version)}/changelog"
        return self._many(wire.notes_from_json, self._json(path), "releases")

    def _service(self, service: str | None) -> str:
        if service is not None:
            return service
        return _only_service(self.list_releases(), self.base_url)

    # --- evidence ----------------------------------------------------------------

    def change_record(self, promotion_id: int) -> ChangeRecord:
        doc = self._json(f"{_promotion(promotion_id)}/change-record")
        return self._read(wire.change_record_from_json, doc)

    def export_evidence(self, service: str, version: str, dest: Path) -> EvidenceExport:
        """Have the server build the bundle (recording the export), and download it to `dest`."""
        # Refused before the server records an export nobody receives.
        if not dest.parent.is_dir():
            raise UsageError(f"cannot write {dest}: {dest.parent} is not a directory")
        with self._request("POST", f"{_release(service, version)}/evidence") as got:
            summary = self._read(_summary, got.headers.get(wire.EVIDENCE_HEADER, ""))
            _download(got.iter_bytes(), dest)
        try:
            manifest = _manifest(dest)
        except ValueError as err:
            self._unreadable(err)
        release = self.get_release(str(self._read(_version, summary)), service=service)
        read = partial(wire.export_from_json, path=dest, release=release, manifest=manifest)
        return self._read(read, summary)

    # --- promotions --------------------------------------------------------------

    def promote(
        self, pipeline: PipelineSource, service: str, version: str, environment: str
    ) -> Promotion:
        body = {"service": service, "version": version, "environment": environment}
        return self._read(wire.promotion_from_json, self._post_json("/api/v1/promotions", body))

    def reevaluate(self, promotion_id: int) -> Promotion:
        # The server's loop re-evaluates open promotions; reading one shows where it is.
        return self._read(wire.promotion_from_json, self._json(_promotion(promotion_id)))

    def approve(self, promotion_id: int, *, comment: str = "") -> Promotion:
        doc = self._post_json(f"{_promotion(promotion_id)}/approve", {"comment": comment})
        return self._read(wire.promotion_from_json, doc)

    def reject(self, promotion_id: int, *, comment: str = "") -> Promotion:
        doc = self._post_json(f"{_promotion(promotion_id)}/reject", {"comment": comment})
        return self._read(wire.promotion_from_json, doc)

    def why(self, service: str, version: str, environment: str) -> Promotion:
        params = {"service": service, "version": version, "environment": environment}
        return self._read(wire.promotion_from_json, self._json("/api/v1/why", params))

    def list_promotions(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Promotion]:
        params = _params(service=service, environment=environment, limit=limit)
        page = self._json("/api/v1/promotions", params)
        return self._many(wire.promotion_from_json, page, "promotions")

    def await_deployment(
        self, promotion_id: int, *, timeout_s: float, on_progress: Progress | None = None
    ) -> tuple[Promotion, Deployment | None]:
        """Read the promotion and its Deployment until it settled or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        seen: Deployment | None = None
        while True:
            promotion = self.reevaluate(promotion_id)
            deployment = self._deployment_of(promotion)
            if deployment is not None and on_progress is not None and deployment != seen:
                on_progress(deployment)
            seen = deployment or seen
            settled = deployment is not None and not deployment.active
            if settled or promotion.state != "approved" or time.monotonic() >= deadline:
                return self.reevaluate(promotion_id), deployment
            time.sleep(POLL_S)

    def _deployment_of(self, promotion: Promotion) -> Deployment | None:
        found = self.list_deployments(
            service=promotion.service, environment=promotion.environment, limit=20
        )
        return next((d for d in found if d.promotion_id == promotion.id), None)

    # --- environments and deployments --------------------------------------------

    def environment_status(self, pipeline: PipelineSource) -> tuple[str, list[EnvironmentView]]:
        page = self._json("/api/v1/status")
        service = page.get("service")
        if not isinstance(service, str):
            raise StoreError(f"the server at {self.base_url} answered no service")
        return service, self._many(wire.environment_from_json, page, "environments")

    def list_deployments(
        self, *, service: str | None = None, environment: str | None = None, limit: int = 50
    ) -> list[Deployment]:
        params = _params(service=service, environment=environment, limit=limit)
        page = self._json("/api/v1/deployments", params)
        return self._many(wire.deployment_from_json, page, "deployments")

    # --- waivers -----------------------------------------------------------------

    def create_waiver(
        self,
        pipeline: PipelineSource,
        *,
        rule: str,
        environment: str,
        expires_s: float,
        reason: str,
    ) -> WaiverStatus:
        body = {"rule": rule, "environment": environment, "expires_s": expires_s}
        doc = self._post_json("/api/v1/waivers", {**body, "reason": reason})
        return self._read(wire.waiver_from_json, doc)

    def approve_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus:
        return self._decide_waiver(waiver_id, "approve", comment)

    def reject_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus:
        return self._decide_waiver(waiver_id, "reject", comment)

    def revoke_waiver(self, waiver_id: int, *, comment: str = "") -> WaiverStatus:
        return self._decide_waiver(waiver_id, "revoke", comment)

    def get_waiver(self, waiver_id: int) -> WaiverStatus:
        return self._read(wire.waiver_from_json, self._json(f"/api/v1/waivers/{waiver_id}"))

    def list_waivers(
        self,
        *,
        environment: str | None = None,
        rule: str | None = None,
        state: WaiverState | None = None,
        limit: int = 100,
    ) -> list[WaiverStatus]:
        params = _params(environment=environment, rule=rule, state=state, limit=limit)
        return self._many(wire.waiver_from_json, self._json("/api/v1/waivers", params), "waivers")

    def _decide_waiver(self, waiver_id: int, verb: str, comment: str) -> WaiverStatus:
        doc = self._post_json(f"/api/v1/waivers/{waiver_id}/{verb}", {"comment": comment})
        return self._read(wire.waiver_from_json, doc)

    # --- reading answers -----------------------------------------------------------

    def _read(self, read: Callable[[object], _T], doc: object) -> _T:
        try:
            return read(doc)
        except (ValueError, KeyError, TypeError) as err:
            self._unreadable(err)

    def _many(self, read: Callable[[object], _T], page: Mapping[str, object], key: str) -> list[_T]:
        items = page.get(key)
        if not isinstance(items, list):
            raise StoreError(f"the server at {self.base_url} answered no list of {key}")
        return [self._read(read, item) for item in items]

    def _unreadable(self, err: Exception) -> NoReturn:
        raise StoreError(
            f"the server at {self.base_url} answered what this CLI cannot read ({err}); "
            "is the CLI's version the server's?"
        ) from None


def _params(**values: str | int | None) -> dict[str, str | int]:
    return {k: v for k, v in values.items() if v is not None}


def _release(service: str, version: str) -> str:
    return f"/api/v1/releases/{quote(service, safe='')}/{quote(version, safe='')}"


def _summary(header: object) -> object:
    return json.loads(str(header))


def _version(summary: object) -> object:
    if not isinstance(summary, dict):
        raise ValueError("the export's summary is not an object")  # noqa: TRY004
    return summary["version"]


def _download(chunks: Iterator[bytes], dest: Path) -> None:
    """Write `chunks` under a temporary name beside `dest`, renamed there only when complete."""
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        partial.replace(dest)
    except OSError as err:
        raise UsageError(f"cannot write {dest}: {err.strerror or err}") from None
    finally:
        partial.unlink(missing_ok=True)


def _manifest(path: Path) -> object:
    """The manifest of the bundle at `path`; ValueError when it is no bundle."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(MANIFEST))
    except (zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"the bundle it sent has no readable {MANIFEST}: {err}") from None


def _promotion(promotion_id: int) -> str:
    return f"/api/v1/promotions/{int(promotion_id)}"


def _only_service(releases: list[Release], server: str) -> str:
    services = sorted({r.service for r in releases})
    if len(services) == 1:
        return services[0]
    if not services:
        raise UsageError(f"no releases yet on {server}; make one with `conveyor release create`")
    raise UsageError(f"releases of several services on {server}; name one with --service")
