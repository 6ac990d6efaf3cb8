"""Channel-layer group names. Consumers join them; the event helper sends to them."""


def advisor_group(advisor_id: int) -> str:
    return f"advisor.{advisor_id}"


def pool_group(agency_id: int) -> str:
    return f"pool.{agency_id}"


def supervision_group(agency_id: int) -> str:
    return f"supervision.{agency_id}"


def left_behind(previous_handler_id: int | None, thread, *, was_in_pool: bool) -> tuple[str, ...]:
    """Who just lost sight of a thread whose handler changed: its previous handler, or
    the agency pool it left (only if it was there: a new thread was never pooled, and
    its customer's name must not reach the pool)."""
    if previous_handler_id is None:
        return (pool_group(thread.agency_id),) if was_in_pool and thread.handler_id else ()
    return (advisor_group(previous_handler_id),) if previous_handler_id != thread.handler_id else ()
