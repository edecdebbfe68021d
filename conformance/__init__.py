"""socketserver-conformance: a property-based conformance kit for the socketserver API."""

from importlib import metadata

try:
    __version__ = metadata.version("socketserver-conformance")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"
