# The outbound tests' servers (the simulator, the app over HTTP), available to every test here.
from tests.servers import live_app, simulator  # noqa: F401
