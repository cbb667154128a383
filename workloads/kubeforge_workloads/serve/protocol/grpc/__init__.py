"""The Open Inference Protocol v2 over gRPC: inference.proto and the modules grpcio-tools generates from it."""
