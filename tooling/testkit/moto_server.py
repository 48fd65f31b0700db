"""moto's server, with `tooling.testkit.moto_speed` applied:
`python -m tooling.testkit.moto_server -p PORT`."""

import logging

from moto.server import main

from tooling.testkit import moto_speed

if __name__ == "__main__":
    moto_speed.apply()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request costs
    main()
