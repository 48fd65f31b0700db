"""Build checks: the template reader, `sam build` with the layer's checks, statelint on the ASL."""
