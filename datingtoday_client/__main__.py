"""``python -m datingtoday_client``: see :mod:`datingtoday_client.cli`."""

import sys

from datingtoday_client.cli import main

sys.exit(main())
