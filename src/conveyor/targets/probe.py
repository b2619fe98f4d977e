"""Health checks over HTTP, and free ports, with the standard library only."""

from __future__ import annotations

import contextlib
import http.client
import socket

from conveyor.targets.base import HealthCheck, HealthResult

_BODY_LIMIT = 64 * 1024


def http_health(host: str, port: int, check: HealthCheck) -> HealthResult:
    """GET `check.path` on `host:port`: healthy on 2xx, else unhealthy with the reason."""
    connection = http.client.HTTPConnection(host, port, timeout=check.timeout_s)
    try:
        connection.request("GET", check.path, headers={"User-Agent": "conveyor-health"})
        response = connection.getresponse()
        response.read(_BODY_LIMIT)
    except TimeoutError:
        return HealthResult("unhealthy", f"no answer within {check.timeout_s:g}s")
    except ConnectionRefusedError:
        return HealthResult("unhealthy", f"nothing listens on port {port}")
    except (OSError, http.client.HTTPException) as err:
        return HealthResult("unhealthy", f"{check.path}: {err or type(err).__name__}")
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return HealthResult("healthy")
    return HealthResult("unhealthy", f"{check.path} answered HTTP {response.status}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now; it may be taken before it is used (callers retry)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
