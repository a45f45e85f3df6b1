"""Qt-free and torch-free core: catalog, walking, decoding, hashing, index, grouping, search."""
