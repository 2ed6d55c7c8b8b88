"""Developers' tools, kept out of the wheel: the tiny test models (``tiny``), the
trained tiny pairs' training (``train_tiny``), the checkpoint zoo (``zoo``) and
the stand-in hub (``hub_standin``).  They import the package; nothing in the
package, the wheel's tools included, imports them."""
