"""The control plane: where the route core's objects come from.

``plane`` (``ControlPlane``: list-then-watch, 410 relist, backoff, status writer), ``kubeapi``
(the Kubernetes API boundary, lightkube), ``lease`` (Lease leader election) and ``static`` (the
same objects from YAML files, reloaded on change).
"""
