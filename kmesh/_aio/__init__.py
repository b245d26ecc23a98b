"""asyncio glue shared by the protocol packages (:mod:`kmesh.kds`, :mod:`kmesh.dps`); never imported by
the sans-IO packages."""
