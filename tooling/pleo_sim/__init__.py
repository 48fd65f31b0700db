"""A local stand-in for Pleo's Export API (../shared/pleo-api.md), with fault injection, several
companies and Pleo's OAuth token endpoint."""

from tooling.pleo_sim.app import PleoSimulator, RateLimit, SimRequest, SimResponse
from tooling.pleo_sim.companies import DEFAULT_COMPANY_ID, SimCompany
from tooling.pleo_sim.faults import Fault
from tooling.pleo_sim.jobs import JsonLiteral, SimJob
from tooling.pleo_sim.oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TokenFault

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_COMPANY_ID",
    "Fault",
    "JsonLiteral",
    "PleoSimulator",
    "RateLimit",
    "SimCompany",
    "SimJob",
    "SimRequest",
    "SimResponse",
    "TokenFault",
]
