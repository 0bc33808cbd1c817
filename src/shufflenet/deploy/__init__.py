"""Deployment: inference-optimised models, export to the runtimes people deploy with, int8 / bf16."""
