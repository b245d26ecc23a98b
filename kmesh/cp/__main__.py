"""``python -m kmesh.cp``: the same as the ``kmesh-cp`` command (what ``kmesh.testing.CpProcess`` runs)."""

from __future__ import annotations

from kmesh.cp.main import main

raise SystemExit(main())
