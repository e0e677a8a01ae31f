# examples/validation.py
from runcomfy_client import Client, InputValidationError

with Client() as client:
    try:
        client.submit(
            "community/wan-2-2/fun-inpaint",
            {"prompt": "x", "start_image": "day.png", "stepz": 4, "number_of_frames": 80},
        )
    except InputValidationError as error:
        print(error)
        print([(p.kind, p.name, p.key) for p in error.problems])
