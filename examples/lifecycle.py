# examples/lifecycle.py
from runcomfy_client import Client

with Client() as client:
    handle = client.submit(
        "community/wan-2-1/fusionx/image-to-video",
        {"prompt": "a slow push-in", "image": "examples/images/valley-day.png"},
    )
    request_id = handle.request_id
    for status in handle.iter_status():  # Queued(position=3), InProgress, Completed
        print(type(status).__name__)
    result = handle.result()  # result.video, result.urls, result.output
    paths = result.download("out/lifecycle", on_progress=lambda p: None)
    print(paths)

    # Later, or from another process: re-attach by id.
    result = client.attach(request_id).wait(timeout=900)
    print(result.status)
