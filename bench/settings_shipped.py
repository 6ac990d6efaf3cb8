"""The project's settings with some of our custom pieces swapped for what the libraries ship,
to measure one against the other (docs/benchmarks.md, "Custom pieces against the shipped ones").

    BENCH_SHIPPED=compiled,layer,broker DJANGO_SETTINGS_MODULE=bench.settings_shipped ...

- `compiled`: no preparing cursor of ours (core/compiled.py); Django's documented
  `OPTIONS` instead, `server_side_binding` and psycopg's `prepare_threshold`
  (BENCH_PREPARE_THRESHOLD, psycopg's default 5);
- `layer`: channels-redis's RedisChannelLayer as shipped;
- `broker`: django-q2's ORM broker as shipped.

bench/serve.sh exports the variables, so the server, the cluster and the bench script
all run the same choice.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import CHANNEL_LAYERS, DATABASES, Q_CLUSTER

SHIPPED = {name.strip() for name in os.environ.get("BENCH_SHIPPED", "").split(",") if name.strip()}
unknown = SHIPPED - {"compiled", "layer", "broker"}
if unknown:
    raise SystemExit(f"BENCH_SHIPPED: unknown pieces {sorted(unknown)}")

if "compiled" in SHIPPED:
    DATABASE_PREPARED_STATEMENTS = False
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=int(os.environ.get("BENCH_PREPARE_THRESHOLD", "5"))
    )
if "layer" in SHIPPED and CHANNEL_LAYERS["default"]["BACKEND"] == "channels_app.layers.RedisChannelLayer":
    CHANNEL_LAYERS["default"]["BACKEND"] = "channels_redis.core.RedisChannelLayer"
if "broker" in SHIPPED:
    Q_CLUSTER["broker_class"] = "django_q.brokers.orm.ORM"
