"""Cold start: importing the handler from the BUILT artifact, as Lambda does. Prints figures.

`sam build` for this machine's architecture (cached while the sources do not change), then
read-only copies of the function and the layer next to the runtime's boto3, in isolated
interpreters that write no bytecode (`tooling.testkit.lambda_like`): Lambda cannot write __pycache__
into /var/task or /opt, so whatever the layer does not ship compiled is compiled at every cold
start. Each figure is the median over fresh interpreters of timing one import statement:
`import app` (the handler: Powertools, the core, httpx, boto3) against `import boto3, httpx`
under the same conditions (the floor: what any handler of this kind imports). Also prints
the zipped size of the layer as it ships (arm64).

    python -m benchmarks.bench_cold_start [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess

from tooling.build.artifact import DECLARED, cached_build, check_layer
from tooling.testkit.lambda_like import LambdaLike, lambda_like

# Settings.from_env() runs at import: the function's variables, pointing nowhere (the import
# must not use them).
FUNCTION_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "PLEO_API_BASE_URL": "http://127.0.0.1:9",
    "PLEO_API_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
    "SCOPE_TABLE_NAME": "t",
    "IDEMPOTENCY_TABLE_NAME": "i",
    "SCOPE_BUCKET_NAME": "b",
    "SCOPE_QUEUE_URL": "http://127.0.0.1:9/q.fifo",
    "STATE_MACHINE_ARN": "arn:aws:states:eu-west-1:123456789012:stateMachine:s",
    "POWERTOOLS_SERVICE_NAME": "pleo-export-scope",
}
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def import_seconds(tree: LambdaLike, statement: str) -> float:
    out = subprocess.run(
        tree.command("time-import", statement),
        env=LambdaLike.environment(FUNCTION_ENV),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seconds: float = json.loads(out.strip().splitlines()[-1])["seconds"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters each (>= 5)")
    args = parser.parse_args()
    runs = max(5, args.runs)
    shipped = check_layer(cached_build(DECLARED))
    print(f"layer zipped ({DECLARED}, as it ships): {shipped.zipped_bytes / 2**20:.1f} MiB")
    if shipped.problems:
        print(f"  layer problems: {'; '.join(shipped.problems)}")
    architecture = ARCHITECTURES[platform.machine().lower()]
    built = cached_build(architecture)
    print(f"built artifact ({architecture}, this machine): {built.root}")
    baseline: list[float] = []
    handler: list[float] = []
    with lambda_like(built) as tree:
        for _ in range(runs):  # interleaved: drift on a shared machine hits both alike
            baseline.append(import_seconds(tree, "import boto3, httpx"))
            handler.append(import_seconds(tree, "import app"))
    floor, ours = statistics.median(baseline), statistics.median(handler)
    print(f"import time, median of {runs} fresh interpreters (read-only, no bytecode written):")
    print(f"  import boto3, httpx (floor)  {floor * 1e3:6.0f} ms")
    print(f"  import app (the handler)     {ours * 1e3:6.0f} ms")
    print(f"cold import ratio: {ours / floor:.2f}")


if __name__ == "__main__":
    main()
