# examples/batch_library.py
import asyncio

from runcomfy_client import AsyncClient
from runcomfy_client.batch import Batch, read_batch


async def main() -> None:
    async with AsyncClient() as client:  # uploads the local images (RUNCOMFY_UPLOAD_TO)
        lines = read_batch("examples/batch/valley.jsonl", registry=client.registry, uploads=True)
        async for line in Batch(lines, "out/batch-library", concurrency=16).run(client):
            print(line.name, line.state, line.files)


asyncio.run(main())
