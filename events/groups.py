"""Channel-layer group names. Consumers join them; the event helper sends to them."""


def advisor_group(advisor_id: int) -> str:
    return f"advisor.{advisor_id}"


def pool_group(agency_id: int) -> str:
    return f"pool.{agency_id}"


def supervision_group(agency_id: int) -> str:
    return f"supervision.{agency_id}"
