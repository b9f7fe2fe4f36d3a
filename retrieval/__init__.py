"""Evidence retrieval: ingest documents into a persistent FAISS + BM25 index and search it.

Heavy libraries (faiss, torch, sentence-transformers) load inside the modules that use them.
"""
