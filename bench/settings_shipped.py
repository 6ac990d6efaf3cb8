"""The project's settings with some of our custom pieces swapped for what the libraries ship,
to measure one against the other (docs/benchmarks.md, "Custom pieces against the shipped ones").

    BENCH_SHIPPED=layer,broker DJANGO_SETTINGS_MODULE=bench.settings_shipped ...

- `layer`: channels-redis's RedisChannelLayer as shipped;
- `broker`: django-q2's ORM broker as shipped.

(`compiled`, a preparing cursor of ours against Django's `OPTIONS`, was measured here too;
the `OPTIONS` won and are now the project's own: docs/benchmarks.md.)

bench/serve.sh exports the variables, so the server, the cluster and the bench script
all run the same choice.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import CHANNEL_LAYERS, Q_CLUSTER

SHIPPED = {name.strip() for name in os.environ.get("BENCH_SHIPPED", "").split(",") if name.strip()}
unknown = SHIPPED - {"layer", "broker"}
if unknown:
    raise SystemExit(f"BENCH_SHIPPED: unknown pieces {sorted(unknown)}")

if "layer" in SHIPPED and CHANNEL_LAYERS["default"]["BACKEND"] == "channels_app.layers.RedisChannelLayer":
    CHANNEL_LAYERS["default"]["BACKEND"] = "channels_redis.core.RedisChannelLayer"
if "broker" in SHIPPED:
    Q_CLUSTER["broker_class"] = "django_q.brokers.orm.ORM"
