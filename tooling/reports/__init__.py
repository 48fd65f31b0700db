"""Report generators: the tables of docs/ (robustness matrix, chaos soak) and the one
writer of generated sections."""
