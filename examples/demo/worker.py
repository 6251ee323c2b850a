"""A worker for the demo: it needs QUEUE_URL, and the manifest does not set it."""

import os
import time
import urllib.request

print("worker: starting", flush=True)
queue = os.environ["QUEUE_URL"]  # KeyError when the variable is missing
print(f"worker: polling {queue}", flush=True)
while True:
    with urllib.request.urlopen(queue, timeout=5) as response:
        print(f"worker: got {response.read().decode().strip()!r}", flush=True)
    time.sleep(5)
