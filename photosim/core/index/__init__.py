"""Finding neighbours: the hnswlib vector index, its optional PCA, and the stored kNN graph."""
