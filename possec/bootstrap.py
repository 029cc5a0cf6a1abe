"""The first import of every tool in ``tools/``: the pinned stack's
deprecation warnings silenced for the tool's process.

setuptools >= 77 warns that ``pkg_resources`` is deprecated whenever
mmengine imports it (to resolve ``mmseg::`` config bases), and mmseg 1.2.2
warns about its own API while a model is built; the warnings are listed in
:data:`possec.runtime.quiet.STACK_WARNINGS`. A tool imports this module
before anything else::

    import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)

Importing it installs those warning filters for the rest of the process:
that is its only purpose, and no module of the library imports it (the
library leaves the warning filters to its caller).
"""
from .runtime.quiet import silence_stack_warnings

silence_stack_warnings()
