"""Stubs generated from ``protos/inference/open_inference_grpc.proto`` (the Open Inference Protocol) by
``scripts/gen_protos.sh``, in a descriptor pool of their own (see the script)."""
