"""Serve a measuring function over gatekeeper's command-harness protocol, v1 or v2.

    from gatekeeper_harness import HarnessError, serve

    def measure(request):
        # request: kernel, shape, params, warmup, samples, seed, timing_only
        return {"samples_us": [...], "correct": True, "device": "..."}

    serve(measure)

Do the expensive set-up (imports, the CUDA context) before calling `serve`. Under protocol v1
(one process per shape) the request comes from the environment and one response is printed.
Under v2 (`GATEKEEPER_PROTOCOL=2`, `protocol: 2` in gates.yaml) the process says it is ready and
then answers one request per stdin line until stdin closes; stdout carries protocol lines only, so
anything else printed is sent to stderr. Raise HarnessError (or any exception) for a shape that
cannot be measured: that shape becomes `error` with the message, and the next one is served.
"""
import json
import os
import sys
import traceback


class HarnessError(Exception):
    """A shape that cannot be measured, with the reason gatekeeper should show."""


def request_from_env():
    """The protocol v1 request, from gatekeeper's environment variables."""
    return {
        "kernel": os.environ["GATEKEEPER_KERNEL"],
        "shape": os.environ["GATEKEEPER_SHAPE"],
        "params": json.loads(os.environ["GATEKEEPER_SHAPE_JSON"]),
        "warmup": int(os.environ["GATEKEEPER_WARMUP"]),
        "samples": int(os.environ["GATEKEEPER_SAMPLES"]),
        "seed": int(os.environ["GATEKEEPER_SEED"]),
        "timing_only": os.environ.get("GATEKEEPER_TIMING_ONLY") == "1",
    }


def _answer(measure, request, out):
    try:
        response = measure(request)
    except HarnessError as err:
        response = {"error": str(err)}
    except Exception as err:  # a bug in the harness fails this shape, not the whole kernel
        traceback.print_exc(file=sys.stderr)
        response = {"error": f"{type(err).__name__}: {err}"}
    out.write(json.dumps(response) + "\n")
    out.flush()


def serve(measure, device=None):
    """Answers gatekeeper's requests with `measure`. `device`, when given, is named in the v2
    ready line, so a check can reuse an unchanged kernel's baseline without measuring it."""
    if os.environ.get("GATEKEEPER_PROTOCOL") != "2":
        _answer(measure, request_from_env(), sys.stdout)
        return
    out = sys.stdout
    sys.stdout = sys.stderr
    ready = {"ready": True}
    if device is not None:
        ready["device"] = device
    out.write(json.dumps(ready) + "\n")
    out.flush()
    for line in sys.stdin:
        if line.strip():
            _answer(measure, json.loads(line), out)
