"""Run by `tooling.testkit.lambda_like` in an isolated interpreter (`python -I -S -B`):
standard library only until the path is set. Sets sys.path as the Lambda runtime does
(function, layer, standard library, runtime packages), then either times an import statement
or invokes a handler once with an event, printing one JSON line.

    lambda_bootstrap.py --path=TASK --path=OPT/python --path=RUNTIME time-import "import app"
    lambda_bootstrap.py --path=... invoke app.lambda_handler EVENT.json --timeout 60
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import sysconfig
import time
import uuid
from typing import Any


class Context:
    """What a handler reads of Lambda's context object."""

    def __init__(self, timeout_seconds: float, function_name: str) -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1769
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "lambda-like"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", action="append", default=[])
    sub = parser.add_subparsers(dest="action", required=True)
    timing = sub.add_parser("time-import")
    timing.add_argument("statement")
    invoking = sub.add_parser("invoke")
    invoking.add_argument("handler")
    invoking.add_argument("event")
    invoking.add_argument("--timeout", type=float, default=60)
    invoking.add_argument("--function-name", default="ScopeJobFunction")
    args = parser.parse_args()
    task, layer, runtime = args.path
    sys.path[:0] = [task, layer]
    sys.path.append(runtime)
    if args.action == "time-import":
        started = time.perf_counter()
        exec(args.statement, {})  # noqa: S102 - the benchmark's own statement
        print(json.dumps({"seconds": time.perf_counter() - started}))
        return
    module_name, function_name = args.handler.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), function_name)
    with open(args.event, encoding="utf-8") as stream:
        event = json.load(stream)
    result: Any = handler(event, Context(args.timeout, args.function_name))
    origins = {
        name: getattr(sys.modules.get(name), "__file__", None)
        for name in ("app", "pleo_scope", "httpx", "aws_lambda_powertools", "boto3", "botocore")
    }
    # Anything imported from outside the three folders and the standard library is a leak.
    stdlib = sysconfig.get_paths()
    allowed = (*args.path, stdlib["stdlib"], stdlib["platstdlib"])
    foreign = sorted(
        {
            file
            for name, module in list(sys.modules.items())
            if name not in ("__main__", "__mp_main__")  # this script (multiprocessing aliases it)
            and (file := getattr(module, "__file__", None))
            and not file.startswith(allowed)
        }
    )
    print(json.dumps({"result": result, "origins": origins, "foreign": foreign}))


if __name__ == "__main__":
    main()
