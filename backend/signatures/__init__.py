"""Signature verification: verify two images, datasets and pairs, enrolled profiles with references."""
