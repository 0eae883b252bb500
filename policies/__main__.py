"""Entry point of the kexpose CrossGuard pack: builds the PolicyPack, nothing else.

The Pulumi CLI runs this file as ``python -u -m pulumi.policy <engine-address> .`` from this
directory (the ``pulumi-analyzer-policy-python`` shim); constructing ``PolicyPack`` prints the
gRPC port and serves the Analyzer protocol until the CLI stops the process. Everything else,
rules, environment, config schema, lives in ``kexpose.policy.pack`` where it can be imported
and tested without starting a server.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from kexpose.policy.pack import (
    PACK_NAME,
    build_policies,
    follow_stack_configuration,
    stack_environment,
    stack_policy_config,
)

policies = build_policies(stack_environment(), base=stack_policy_config())
# Newer CLIs name the stack only in the ConfigureStack call; rebuild for it then.
follow_stack_configuration(policies)
PolicyPack(
    name=PACK_NAME,
    policies=policies,
    enforcement_level=EnforcementLevel.ADVISORY,
    description=(
        "Environment-aware exposure rules for Services, Ingresses, TLS, Gateway API and edge "
        "auth (kexpose)."
    ),
)
