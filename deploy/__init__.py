"""Operating the whole stack on one host: supervisord + nginx from the repo's own configs.

``StackSettings`` (``deploy.settings``) is the one place ports, process count and
paths come from; ``Stack`` (``deploy.stack``) starts, inspects, restarts and
stops; ``deploy.preflight`` checks before a start; ``python -m deploy
start|status|restart|stop|render|loadtest|ctl|nginx`` is the command line.
"""

from deploy import loadtest
from deploy.settings import StackSettings
from deploy.stack import Stack, StackError

__all__ = ["Stack", "StackError", "StackSettings", "loadtest"]
