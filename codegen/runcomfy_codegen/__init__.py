"""runcomfy-client's code generator: typed wrappers from a folder of model schemas.

``make generate`` (this project) and ``runcomfy-client codegen`` (anyone) run :func:`generate`.
Needs the ``codegen`` extra: ``pip install 'runcomfy-client[codegen]'``.
"""

from ._generate import DEFAULT_PACKAGE, CodegenError, Report, check_package_name, generate

__all__ = ["DEFAULT_PACKAGE", "CodegenError", "Report", "check_package_name", "generate"]
