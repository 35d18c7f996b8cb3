"""llama.cpp's own HTTP server (PyPI xllamacpp) for the real-model test tier.

    python serve.py MODEL.gguf [--mmproj MMPROJ.gguf] [--alias NAME] [--ctx N] [--parallel N]
                    [--threads N]

With --mmproj the model takes images (llama.cpp's multimodal path, `mtmd`).

Binds 127.0.0.1 on an ephemeral port, waits until /health answers, prints one line
`URL=http://127.0.0.1:PORT` on stdout and serves until its stdin closes (the test that
started it ended, however it ended) or it gets SIGTERM.
"""
import argparse
import signal
import sys
import threading
import time
import urllib.request

import xllamacpp


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--mmproj")
    ap.add_argument("--alias", default="smollm2")
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    if args.mmproj:
        params.mmproj.path = args.mmproj
        params.mmproj_use_gpu = False
    params.model_alias = {args.alias}  # a set of names (a plain string would be split into letters)
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    server = xllamacpp.Server(params)
    url = server.listening_address.rstrip("/")

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            print("serve.py: llama.cpp server did not become healthy in 60 s", file=sys.stderr)
            return 1
        time.sleep(0.1)

    print(f"URL={url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
