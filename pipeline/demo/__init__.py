"""The demo corpus: a seeded generator of multilingual, multi-source documents with known duplicates.

`corpus` writes the corpus and its truth file, `text` builds documents from the word lists and sentence
templates in `data/`, `labels` writes the labelled training sets for the demo's classifiers.
"""
