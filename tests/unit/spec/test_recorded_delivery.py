"""A Release's recorded delivery config read back into the values a Deployment is planned from."""

from __future__ import annotations

import json

import pytest

from conveyor.core.errors import Location
from conveyor.spec.delivery import Delivery, Environment, Health, Requirements
from conveyor.spec.serialize_delivery import RECORDED, delivery_config, delivery_from_config

HERE = Location("conveyor.yaml", 3, 1)


def test_a_recorded_config_reads_back_as_the_delivery_it_was_made_from() -> None:
    delivery = Delivery(
        service="hello",
        artifacts=("dist/*.py",),
        run="python dist/server.py",
        environments=(
            Environment("dev", HERE),
            Environment("prod", HERE, instances=3, requires=Requirements(after="dev", soak_s=60)),
        ),
        location=HERE,
        health=Health("/ready", 0.5, 12.0),
    )

    read = delivery_from_config(json.loads(json.dumps(delivery_config(delivery))))

    assert read.run == "python dist/server.py"
    assert read.health == Health("/ready", 0.5, 12.0)
    assert read.environment("prod").instances == 3
    assert read.environment("prod").requires == Requirements(after="dev", soak_s=60)
    assert read.location == RECORDED
    assert read.environment("dev").location == RECORDED


@pytest.mark.parametrize("doc", [{}, {"environments": "dev"}, {"service": "x", "environments": []}])
def test_a_damaged_config_is_a_value_error_naming_what_is_wrong(doc: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a recorded delivery config"):
        delivery_from_config(doc)
