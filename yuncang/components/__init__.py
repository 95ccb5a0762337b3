"""Long-running parts of the product (simulator, ingest, scheduler, ...).

Each module here may define ``async def run(rt: Runtime, stop: asyncio.Event) -> None`` and a
``ORDER`` integer; ``yuncang demo`` runs every such component beside the web app until ``stop`` is set.
"""
