"""Child process of the SQLite crash tests: writes a known baseline, then gets killed mid-way.

Usage: ``crash_child.py PATH mid N`` commits the baseline, then a large batch whose ``fault_hook`` prints
``MID`` at write N and sleeps inside the open transaction; ``crash_child.py PATH between`` commits the
baseline and one more batch, prints ``COMMITTED <revision>`` and sleeps before a next batch. Either way
the parent SIGKILLs it while it sleeps. Every line it prints is flushed at once: the parent acts on them.
"""

from __future__ import annotations

import asyncio
import sys
import time

from kmesh.model import Meta, Resource, ResourceKey
from kmesh.model.types.mesh import MeshSpec
from kmesh.model.types.secret import SecretSpec
from kmesh.store import Create, Delete, SqliteStore, Update, Write

BATCH_SIZE = 1000
# 4 KiB of data per secret: the batch is larger than SQLite's page cache, so pages of the unfinished
# transaction really reach the WAL file before the kill.
BIG_DATA = "QUFB" * 1024


def mesh(name: str) -> Resource:
    return Resource(meta=Meta(type="Mesh", name=name), spec=MeshSpec())


def secret(
    name: str, mesh: str = "default", data: str = "YmFzZQ==", owner: ResourceKey | None = None
) -> Resource:
    return Resource(meta=Meta(type="Secret", name=name, mesh=mesh, owner=owner), spec=SecretSpec(data=data))


def baseline() -> list[Write]:
    owner = ResourceKey("Secret", "owner", "default")
    return [
        Create(mesh("default")),
        Create(mesh("other")),
        *(Create(secret(f"s-{i:02d}")) for i in range(20)),
        Create(secret("owner")),
        *(Create(secret(f"owned-{i}", owner=owner)) for i in range(3)),
        *(Create(secret(f"o-{i}", mesh="other")) for i in range(5)),
    ]


def crash_batch() -> list[Write]:
    """Updates, a cascade, many large creates, and last a Mesh delete that cascades over everything."""
    return [
        Update(secret("s-00", data="Y2hhbmdlZA==")),
        Delete(ResourceKey("Secret", "owner", "default")),
        *(Create(secret(f"batch-{i:04d}", data=BIG_DATA)) for i in range(BATCH_SIZE - 3)),
        Delete(ResourceKey("Mesh", "default")),
    ]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class PauseAt:
    """The fault hook: once armed, it stops the commit at write ``index`` with its transaction open."""

    def __init__(self, index: int | None) -> None:
        self.index = index
        self.armed = False

    def __call__(self, current: int) -> None:
        if self.armed and current == self.index:
            say("MID")
            time.sleep(600)  # the parent kills us long before this ends


async def main(path: str, mode: str, index: int | None) -> None:
    hook = PauseAt(index)
    store = SqliteStore(path, fault_hook=hook)
    await store.commit(baseline())
    await store.update(secret("s-01", data="djI="))
    say(f"BASELINE {store.revision}")
    if mode == "mid":
        hook.armed = True
        await store.commit(crash_batch())
        say("UNREACHABLE: the batch committed")
    else:
        await store.commit([Create(secret(f"first-{i:03d}", mesh="other")) for i in range(200)])
        say(f"COMMITTED {store.revision}")
        await asyncio.sleep(600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None))
