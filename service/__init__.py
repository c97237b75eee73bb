"""Atelier: neural style transfer and CNN visualisation as a service.

`service.core` is a plain library (arrays in, arrays out) that never imports a server framework;
`service.server` holds the transports (gRPC, REST) and the data plane they share.
"""

__version__ = "0.1.0"
