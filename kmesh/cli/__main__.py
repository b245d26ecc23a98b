"""``python -m kmesh.cli``: kmeshctl without its console script (what the integration tests run)."""

from __future__ import annotations

from kmesh.cli.main import main

raise SystemExit(main())
