"""The A2A agent card of a formation: who it is, where to call it, what it can do.

Pure: built from the config and the loaded triggers. Skills are the formation's agents (send
with `metadata.agent_id` to pick one) and its triggers (send with `metadata.trigger` and the
template's data as the message's data part); the capabilities are streaming and push
notifications (errand's signed webhooks); the security scheme is errand's client keys sent as
`Authorization: Bearer <key>`.
"""

from __future__ import annotations

from collections.abc import Iterable

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol

from errand.config import AgentConfig
from errand.triggers import Trigger

A2A_PATH = "/a2a"
"""The JSON-RPC endpoint every A2A method is POSTed to."""
SCHEME = "errand_key"
TEXT = "text/plain"


def agent_card(
    name: str, version: str, base_url: str, agents: Iterable[AgentConfig], triggers: Iterable[Trigger]
) -> AgentCard:
    """The card served at /.well-known/agent-card.json; `base_url` is where it was asked for."""
    skills = [_agent_skill(a) for a in agents] + [_trigger_skill(t) for t in triggers]
    return AgentCard(
        name=name,
        description=f"errand formation {name}: durable asynchronous agent tasks",
        version=version,
        supported_interfaces=[
            AgentInterface(
                url=base_url.rstrip("/") + A2A_PATH,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            )
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        security_schemes={
            SCHEME: SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer", description="an errand client key (keys.client)"
                )
            )
        },
        security_requirements=[SecurityRequirement(schemes={SCHEME: StringList()})],
        default_input_modes=[TEXT],
        default_output_modes=[TEXT],
        skills=skills,
    )


def _agent_skill(agent: AgentConfig) -> AgentSkill:
    return AgentSkill(
        id=agent.id,
        name=agent.id,
        description=agent.description or f"errand agent {agent.id} (send with metadata.agent_id)",
        tags=["agent", *(["default"] if agent.default else [])],
    )


def _trigger_skill(trigger: Trigger) -> AgentSkill:
    return AgentSkill(
        id=f"trigger:{trigger.name}",
        name=trigger.name,
        description=trigger.description or f"errand trigger {trigger.name} (send with metadata.trigger)",
        tags=["trigger"],
    )
