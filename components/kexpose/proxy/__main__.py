"""``python -m kexpose.proxy`` is ``kexpose-proxy``."""

from kexpose.proxy.cli import main

main()
