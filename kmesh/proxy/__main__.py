"""``python -m kmesh.proxy``: the same as the ``kmesh-proxy`` command."""

from __future__ import annotations

import sys

from kmesh.proxy.main import main

sys.exit(main())
