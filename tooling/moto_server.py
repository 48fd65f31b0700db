"""moto's server, with `tooling.moto_speed` applied: `python -m tooling.moto_server -p PORT`."""

from moto.server import main

from tooling import moto_speed

if __name__ == "__main__":
    moto_speed.apply()
    main()
