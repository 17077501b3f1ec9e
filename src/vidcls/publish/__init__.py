"""What leaves the machine: the model card, the hub, ONNX export."""
