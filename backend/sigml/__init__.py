"""sigml: the Django-free ML core of the signature verifier.

Preprocessing, dataset readers, writer-disjoint splits and pairs, the Siamese ResNet-18,
training, evaluation and inference. Used by the API, the CLI (`python -m sigml`) and the notebooks.
"""

__version__ = "0.1.0"
