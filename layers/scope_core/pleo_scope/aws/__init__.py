"""Adapters from the ports to AWS (boto3). Every client honours AWS_ENDPOINT_URL, which is
how the same code reaches moto's server locally."""
