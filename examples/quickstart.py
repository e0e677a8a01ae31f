# examples/quickstart.py
from runcomfy_client import Client

# Settings come from the environment: RUNCOMFY_API_KEY, RUNCOMFY_BASE_URL (the emulator here,
# the real API when unset) and RUNCOMFY_UPLOAD_TO (where local files are uploaded first).
with Client() as client:
    result = client.run(
        "community/wan-2-2/fun-inpaint",
        {
            "prompt": "day turns to dusk over the valley",
            "start_image": "examples/images/valley-day.png",
            "end_image": "examples/images/valley-dusk.png",
            "resolution": "720x480",
        },
        download_to="out/quickstart",
    )
    print(result.status, *result.files)
