"""attnslides' attention engine: the Transformer pieces of the lecture, in lecture order.

Read the modules in this order, as the slides go:

1. :mod:`engine.tokens`      tokenization and the vocabulary (no torch needed)
2. :mod:`engine.embedding`   token embeddings: id → vector
3. :mod:`engine.positional`  positional encodings: sinusoidal, learned, RoPE, ALiBi
4. :mod:`engine.masks`       causal and padding masks (and torch's opposite polarity)
5. :mod:`engine.attention`   scaled dot-product attention → self-attention → multi-head attention
6. :mod:`engine.block`       LayerNorm, feed-forward, residual → Transformer block → encoder stack
7. :mod:`engine.toy`         tasks learned live: reversing sequences, with one layer or a deep stack
8. :mod:`engine.recurrent`   what attention replaced: an RNN, one step per token
9. :mod:`engine.wordpiece`   BERT's WordPiece tokenizer (standard library only)
10. :mod:`engine.pretrained` a real trained BERT (all-MiniLM-L6-v2) run by the modules above

:mod:`engine.optim` is the written-out Adam of the live trainings.

:mod:`engine.device` says where it runs (``DEVICE=cpu|cuda|mps|auto``). The benchmarks and the GPU
check are developers' tools, in ``tools/`` beside this package.

Shapes are named once and used everywhere::

    B  batch size          L  query length        S  key/value length
    H  number of heads     d_k  query/key size    d_v  value size
    d_model  width of the token vectors           d_ff  hidden width of the feed-forward

Importing this package is cheap: it imports no submodule (and so no torch).
"""
