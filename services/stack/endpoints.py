"""Where a client command (`journeys simulate|replay|evaluate`) finds the stack, the way `journeys up` does.

Without this the commands read KAFKA_BOOTSTRAP_SERVERS/REDIS_URL's defaults (39092, 36379) and ignored
JOURNEYS_KAFKA_PORT, JOURNEYS_REDIS_PORT and JOURNEYS_STATE_DIR: on a shared machine they wrote into, or
evaluated, somebody else's stack.
"""

from __future__ import annotations

from pydantic import ValidationError

from services.common.errors import UserError
from services.stack import state
from services.stack.settings import StackSettings


def endpoints(settings: StackSettings) -> tuple[str, str]:
    """(bootstrap servers, Redis URL): an endpoint given explicitly, else what the stack of the state folder
    runs on (stack.json, while one of its processes lives), else the local stack's ports."""
    recorded = state.load(settings.state_path)
    live = recorded is not None and any(p.alive() for p in recorded.procs.values())
    bootstrap, redis = settings.local_bootstrap, settings.local_redis_url
    if live and recorded is not None:
        bootstrap, redis = recorded.bootstrap_servers, recorded.redis_url
    return (
        settings.kafka_bootstrap_servers if settings.external_kafka else bootstrap,
        settings.redis_url if settings.external_redis else redis,
    )


def client_settings() -> StackSettings:
    """The settings of a client command, its Kafka and Redis endpoints resolved as above."""
    try:
        settings = StackSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise UserError(f"invalid setting {where}: {err['msg']}") from None
    bootstrap, redis = endpoints(settings)
    return settings.model_copy(update={"kafka_bootstrap_servers": bootstrap, "redis_url": redis})
