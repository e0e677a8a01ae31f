# examples/async_client.py
import asyncio

from runcomfy_client import AsyncClient

INPUTS = {
    "prompt": "day turns to dusk over the valley",
    "start_image": "examples/images/valley-day.png",
    "end_image": "examples/images/valley-dusk.png",
    "resolution": "720x480",
}


async def main() -> None:
    async with AsyncClient() as client:
        results = await asyncio.gather(
            client.run("community/wan-2-2/fun-inpaint", INPUTS, download_to="out/async-1"),
            client.run("community/wan-2-2/fun-inpaint", INPUTS, download_to="out/async-2"),
        )
        for result in results:
            print(result.status, *result.files)


asyncio.run(main())
