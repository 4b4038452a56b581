"""Request body decoding (JSON, YAML, Kubernetes protobuf) and response encoding."""
