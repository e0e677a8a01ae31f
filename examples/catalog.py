# examples/catalog.py
from runcomfy_client import Client

# my_catalog: the folder `schema sync` filled above (its schemas and their sidecars).
with Client(schema_dirs=["my_catalog"]) as client:
    for info in client.catalog(category="featured"):
        print(f"{info.model_id}: {info.price_text}")
    picture = client.model_info("google/nano-banana-2-lite/text-to-image")
    print(picture.display_name, "makes", picture.output_kind)
    result = client.run("bytedance/seedance-2.5/text-to-video/1080p", {"prompt": "a harbour"})
    print("cost:", result.cost)  # USD, as the API reported it (None when it does not say)
