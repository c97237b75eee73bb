"""Stubs generated from ``protos/atelier/v1/atelier.proto`` by ``scripts/gen_protos.sh``."""
