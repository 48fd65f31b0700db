"""A local stand-in for Pleo's Export API (../shared/pleo-api.md), with fault injection."""

from tooling.pleo_sim.app import PleoSimulator, RateLimit, SimRequest, SimResponse
from tooling.pleo_sim.faults import Fault
from tooling.pleo_sim.jobs import JsonLiteral, SimJob

__all__ = [
    "Fault",
    "JsonLiteral",
    "PleoSimulator",
    "RateLimit",
    "SimJob",
    "SimRequest",
    "SimResponse",
]
