# examples/typed_wrappers.py
from runcomfy_client import Client
from runcomfy_models.community.wan_2_1.fusionx import image_to_video
from runcomfy_models.community.wan_2_2 import fun_inpaint

with Client() as client:
    video = image_to_video.run(
        client,
        prompt="a slow push-in on a house in a green valley",
        image="examples/images/valley-day.png",
        resolution="720x480 (3:2)",  # image_to_video.Resolution: the schema's choices
        steps=8,  # int; Inputs documents it: "Allowed: 6 to 20. Server default: 10."
        download_to="out/fusionx",
    )
    print(video.files)
    handle = fun_inpaint.submit(  # or run(); async twins: submit_async, run_async
        client,
        prompt="day turns to dusk over the valley",
        start_image="examples/images/valley-day.png",
        end_image="examples/images/valley-dusk.png",
        resolution="720x480 (3:2)",
    )
    print(handle.wait().video)
