"""The stack program Pulumi runs for ``pulumi up -s dev|staging|prod`` (Pulumi.yaml ``main``)."""

from kexpose.program import main

main()
