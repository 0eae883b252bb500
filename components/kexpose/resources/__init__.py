"""The Pulumi shell: components that register the core's manifests as typed resources.

Importing this package registers ``pulumi.Output`` as a deferrable type of the model, so that
models built in Python accept Outputs where the model allows computed values.
"""

from __future__ import annotations

import pulumi

from kexpose.model.base import DEFERRABLE_TYPES
from kexpose.resources.exposed_app import ExposedApp
from kexpose.resources.exposure import Exposure
from kexpose.resources.ingress_controller import IngressController
from kexpose.resources.selfsigned import SelfSignedCertificate

DEFERRABLE_TYPES.add(pulumi.Output)

__all__ = ["ExposedApp", "Exposure", "IngressController", "SelfSignedCertificate"]
