"""Overrides that shrink a run on the real ECG5000 files to a few seconds.

The tests that use them check that the stages fit together, not the figures
of the method.
"""

TINY_ENCODER = [
    "encoder.module.hidden_sizes=[8,4]",
    "encoder.batch_size=256",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
]
