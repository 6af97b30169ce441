"""attnslides' attention engine: the Transformer pieces of the lecture, in lecture order.

Read the modules in this order, as the slides go:

1. :mod:`engine.tokens`      tokenization, vocabulary and embeddings
2. :mod:`engine.positional`  positional encodings
3. :mod:`engine.masks`       causal and padding masks
4. :mod:`engine.attention`   scaled dot-product attention and self-attention

Shapes are named once and used everywhere::

    B  batch size          L  query length        S  key/value length
    H  number of heads     d_k  query/key size    d_v  value size
    d_model  width of the token vectors

Importing this package is cheap: it imports no submodule (and so no torch).
"""
