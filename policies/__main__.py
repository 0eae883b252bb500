"""Entry point of the kexpose CrossGuard pack: builds the PolicyPack, nothing else.

The Pulumi CLI runs this file as ``python -u -m pulumi.policy <engine-address> .`` from this
directory (the ``pulumi-analyzer-policy-python`` shim); constructing ``PolicyPack`` prints the
gRPC port and serves the Analyzer protocol until the CLI stops the process. Everything else,
rules, environment, config schema, lives in ``kexpose.policy.pack`` where it can be imported
and tested without starting a server.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from kexpose.policy.pack import PACK_NAME, build_policies, stack_environment, stack_policy_config

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(stack_environment(), base=stack_policy_config()),
    enforcement_level=EnforcementLevel.ADVISORY,
    description="Environment-aware exposure rules for Services, Ingresses and TLS (kexpose).",
)
