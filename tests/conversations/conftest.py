# The outbound tests' servers (the simulator, the app over HTTP), available to every test here.
from tests.email import anymail_settings, smtp_server  # noqa: F401
from tests.imap_server import imap_server, imap_tls_server  # noqa: F401
from tests.servers import live_app, simulator  # noqa: F401
