"""The delivery config a Release records: the section's values, not where they were written."""

from __future__ import annotations

import textwrap

from conveyor.core import digest
from conveyor.spec.loader import parse_pipeline
from conveyor.spec.serialize_delivery import delivery_config

COMPACT = """\
version: 1
jobs:
  build: {run: make, outputs: [dist/*.whl]}
delivery:
  service: payments-api
  artifacts: [dist/*.whl]
  run: python -m app --port $PORT
  environments: [{name: dev, auto: true}, {name: prod, requires: {after: dev, soak: 10m}}]
"""

SPREAD = """\
# the same delivery section, written out at length and in another order
version: 1
jobs:
  build:
    run: make
    outputs: ["dist/*.whl"]

delivery:
  environments:
    - name: dev
      auto: true
    - requires:
        soak: 600s
        after: dev
      name: prod
  run: python -m app --port $PORT
  artifacts: "dist/*.whl"
  service: payments-api
"""


def config_of(text: str) -> dict[str, object]:
    pipeline = parse_pipeline(textwrap.dedent(text))
    assert pipeline.delivery is not None
    return delivery_config(pipeline.delivery)


def test_the_same_section_written_differently_has_the_same_config_digest() -> None:
    assert digest.of_json(config_of(COMPACT)) == digest.of_json(config_of(SPREAD))


def test_the_config_holds_no_source_positions() -> None:
    config = config_of(COMPACT)

    assert "location" not in config
    environments = config["environments"]
    assert isinstance(environments, list)
    assert all("location" not in env for env in environments)
    assert config["service"] == "payments-api"


def test_a_changed_value_changes_the_config_digest() -> None:
    changed = COMPACT.replace("--port $PORT", "--port $PORT --workers 2")

    assert digest.of_json(config_of(COMPACT)) != digest.of_json(config_of(changed))
