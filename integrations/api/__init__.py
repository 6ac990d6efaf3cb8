"""The integrators' REST API (/api/v1/): an interface above the domain, like the inbox's
views and the websocket consumers. One module per resource holds its endpoints; the
serializers are in `serializers`, what every endpoint shares in `base` and `auth`.
Domain apps never import it: an endpoint parses, checks access, calls one service."""
