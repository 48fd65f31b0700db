"""The test kit: the local stand-ins (moto on loopback, the template's resources, the product
wired to them) that the tests, the demo, the reports and the benchmarks run on."""
